#!/usr/bin/env python3
"""Run the attendance-live benchmarks: ours vs the Node.js Socket.IO peer vs the floor.

    .venv/bin/python bench/run.py --quick        # N=500, 2 rounds: a minute or two
    .venv/bin/python bench/run.py                # N=10,000, 3 rounds: under ten minutes

The scenarios, servers and report are in the package ``bench/runner/``
(``--help`` lists them); this file is the command.
"""

from __future__ import annotations

import os
import sys

# bench/ holds loadgen.py and the runner package; the command runs from anywhere.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runner.cli import main

if __name__ == "__main__":
    main()
