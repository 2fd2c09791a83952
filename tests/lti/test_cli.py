"""``attendance-live lti register | list | remove | tool-config``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.process import cli_env, run_cli

MOODLE = [
    "--issuer", "https://moodle.uni.example",
    "--client-id", "Ab12cD",
    "--auth-url", "https://moodle.uni.example/mod/lti/auth.php",
    "--token-url", "https://moodle.uni.example/mod/lti/token.php",
    "--jwks-url", "https://moodle.uni.example/mod/lti/certs.php",
]  # fmt: skip


def test_register_several_platforms_and_deployments_list_and_remove(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'lti.db'}")
    first = run_cli("lti", "register", *MOODLE, "--deployment-id", "1", env=env)
    assert first.returncode == 0, first.stderr
    assert "deployments: 1" in first.stdout
    again = run_cli("lti", "register", *MOODLE, "--deployment-id", "2", "--deployment-id", "3", env=env)
    assert "deployments: 1, 2, 3" in again.stdout
    canvas = run_cli(
        "lti", "register",
        "--issuer", "https://canvas.instructure.com",
        "--client-id", "10000000000042",
        "--deployment-id", "7:abc",
        "--auth-url", "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "--token-url", "https://sso.canvaslms.com/login/oauth2/token",
        "--jwks-url", "https://sso.canvaslms.com/api/lti/security/jwks",
        env=env,
    )  # fmt: skip
    assert canvas.returncode == 0, canvas.stderr
    listed = run_cli("lti", "list", env=env).stdout
    assert "https://moodle.uni.example  client Ab12cD  deployments 1, 2, 3" in listed
    assert "https://canvas.instructure.com  client 10000000000042  deployments 7:abc" in listed
    gone = run_cli("lti", "remove", "--issuer", "https://moodle.uni.example", "--deployment-id", "2", env=env)
    assert gone.returncode == 0, gone.stderr
    assert "deployments 1, 3" in run_cli("lti", "list", env=env).stdout
    gone = run_cli("lti", "remove", "--issuer", "https://canvas.instructure.com", env=env)
    assert gone.returncode == 0
    assert "canvas" not in run_cli("lti", "list", env=env).stdout
    unknown = run_cli("lti", "remove", "--issuer", "https://nowhere.example", env=env)
    assert unknown.returncode == 2
    assert "no platform is registered" in unknown.stderr


def test_register_refuses_a_url_that_is_not_one(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'lti.db'}")
    bad = [*MOODLE]
    bad[bad.index("--jwks-url") + 1] = "certs.php"
    result = run_cli("lti", "register", *bad, "--deployment-id", "1", env=env)
    assert result.returncode == 2
    assert "--jwks-url 'certs.php' is not an absolute https:// URL" in result.stderr


def test_tool_config_names_every_url_and_scope(tmp_path: Path) -> None:
    env = {**cli_env(f"sqlite:///{tmp_path / 'lti.db'}"), "PUBLIC_URL": "https://attendance.uni.example"}
    human = run_cli("lti", "tool-config", env=env)
    assert "Login URL (OIDC initiation):  https://attendance.uni.example/lti/login" in human.stdout
    assert "Launch / redirect URL:        https://attendance.uni.example/lti/launch" in human.stdout
    assert "Public keyset (JWKS) URL:     https://attendance.uni.example/lti/jwks.json" in human.stdout
    config = json.loads(run_cli("lti", "tool-config", "--json", env=env).stdout)
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in config["scopes"]
    assert config["redirect_uris"] == ["https://attendance.uni.example/lti/launch"]
