"""schemathesis hooks for tessera (loaded through SCHEMATHESIS_HOOKS by .ci/e2e).

Every operation but the sign-in itself is called signed in: the provider signs
in at POST /v1/auth with the demo account (Token base64(user:password)) and
sends the JWT as Bearer and the CSRF token as X-CSRF-Token. A 401 (say, after
schemathesis called POST /v1/signout) makes schemathesis sign in again.
"""

import base64
import json
import os
import urllib.request

import schemathesis

BASE = os.environ["TESSERA_E2E_URL"]
USER = os.environ.get("TESSERA_E2E_USER", "steve")
PASSWORD = os.environ["TESSERA_E2E_PASSWORD"]


def sign_in():
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"{BASE}/v1/auth",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    return {"jwt": body["jwt"], "csrf": body["csrf"]}


@schemathesis.auth(refresh_interval=600).skip_for(path="/v1/auth")
class TesseraSession:
    def get(self, case, context):
        return sign_in()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data['jwt']}"
        case.headers["X-CSRF-Token"] = data["csrf"]
