"""Planted secrets sent through the API never reach the database files or the log."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.conftest import start_server

AWS_KEY = "AKIA" + "QX7R2M4KZP9WLT3B"
GITHUB = "ghp_" + "r8Kd2LmQ9vXw4TzN7pYb1HcJ6sAe3FgU0iOk"
STRIPE = "sk_live_" + "51Hx9TqLmZ2vKd8RwPb4NcYe"
DB_PASSWORD = "Zq8#mW2" + "!vR7kT4p"
PEM_BODY = "MIIEowIBAAKCAQEA" + "7Yt2nB9xQ4mK1pL8sR3vW6zH0jD5fG2aC9eT4uI7oP1kM3nB8vX"
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE" + " KEY-----\n" + PEM_BODY + "\n" + PEM_BODY[::-1] + "\n"
    "-----END RSA PRIVATE" + " KEY-----"
)
SECRETS = [AWS_KEY, GITHUB, STRIPE, DB_PASSWORD, PEM_BODY]


def test_planted_secrets_are_redacted_everywhere(tmp_path: Path, tiny_model_dir: Path) -> None:
    server = start_server(tmp_path / "home", tiny_model_dir)
    try:
        prefix = (
            "import boto3\n\n"
            f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n'
            f'DB_PASSWORD = "{DB_PASSWORD}"\n'
            f'KEY = """{PRIVATE_KEY}"""\n'
            "def connect():\n    return "
        )
        suffix = f'\n\nGITHUB_TOKEN = "{GITHUB}"\nstripe.api_key = "{STRIPE}"\n'
        with server.client() as client:
            response = client.post(
                "/v1/suggestions",
                json={
                    "prefix": prefix,
                    "suffix": suffix,
                    "language": "python",
                    "max_tokens": 4,
                    "path": "cfg/settings.py",
                },
            )
            assert response.status_code == 200
            sid = response.json()["suggestion_id"]
            events = [
                {
                    "id": uuid.uuid4().hex,
                    "suggestion_id": sid,
                    "kind": "accepted",
                    "text": f'token = "{GITHUB}"',
                },
                {
                    "id": uuid.uuid4().hex,
                    "suggestion_id": sid,
                    "kind": "rewritten",
                    "text": f"client = Client(api_key='{STRIPE}')",
                },
                {
                    "id": uuid.uuid4().hex,
                    "suggestion_id": sid,
                    "kind": "retained",
                    "checkpoint": "save",
                    "similarity": 0.2,
                    "text": PRIVATE_KEY,
                },
            ]
            assert client.post("/v1/events", json={"events": events}).status_code == 200
        # Everything acknowledged is committed; the suggestion row was committed before.
    finally:
        server.stop()
    raw = b"".join(
        p.read_bytes() for p in server.home.iterdir() if p.name.startswith("prefloop.db")
    )
    assert b"<SECRET:" in raw
    log = server.log()
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
        assert secret not in log, secret
    import sqlite3

    with sqlite3.connect(server.db_path) as conn:
        stored_prefix, path = conn.execute("SELECT prefix, path FROM suggestions").fetchone()
    assert "import boto3" in stored_prefix and "def connect():" in stored_prefix
    assert path.startswith("cfg/")
