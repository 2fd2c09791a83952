from __future__ import annotations

from attendance_live.cli import main

raise SystemExit(main())
