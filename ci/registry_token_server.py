#!/usr/bin/env python3
"""The token server of ci/kube.sh's third registry: the bearer-token exchange Docker Hub, GHCR and
most registries use (the distribution spec's "token authentication"), so the code that asks a
registry for a digest and the node's pulls meet it in tests.

GET /token?service=S&scope=repository:NAME:ACTIONS (scope repeats; `account` is ignored) with Basic
credentials, or POST /token with OAuth2's password grant (containerd's first try): answers a JWT (RS256, the certificate in its x5c header, which the registry trusts through
its `rootcertbundle`) granting the scopes asked for. Wrong credentials: 401. None: a token that grants
nothing, as public registries answer anonymous clients (the registry then refuses with 401).
Signing is openssl's (`dgst -sha256 -sign`): no Python package is needed.

Usage: registry_token_server.py PORT KEY_PEM CERT_PEM ISSUER SERVICE USER:PASSWORD
"""
import base64
import http.server
import json
import subprocess
import sys
import time
import urllib.parse
import uuid

port, key, cert, issuer, service, login = sys.argv[1:7]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


with open(cert) as f:
    der = base64.b64decode("".join(l for l in f.read().splitlines() if "CERTIFICATE" not in l))


def token(subject, access):
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
    claims = {"iss": issuer, "sub": subject, "aud": service, "iat": now, "nbf": now - 10,
              "exp": now + 300, "jti": uuid.uuid4().hex, "access": access}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                               input=signing_input.encode(), capture_output=True, check=True).stdout
    return f"{signing_input}.{b64(signature)}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        """The token request of the distribution spec: Basic credentials, scopes in the query."""
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        auth = self.headers.get("Authorization", "")
        credentials = None
        if auth.startswith("Basic "):
            credentials = base64.b64decode(auth[6:]).decode(errors="replace")
        self.answer(credentials, urllib.parse.parse_qs(url.query).get("scope", []))

    def do_POST(self):
        """OAuth2's password grant (what containerd asks first): credentials and scopes in a form."""
        if urllib.parse.urlparse(self.path).path != "/token":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if form.get("grant_type") != ["password"]:
            self.send_error(400, "only grant_type=password")
            return
        credentials = f"{form.get('username', [''])[0]}:{form.get('password', [''])[0]}"
        scopes = [s for scope in form.get("scope", []) for s in scope.split(" ")]
        self.answer(credentials, scopes)

    def answer(self, credentials, scopes):
        """A token for `scopes` to the holder of `credentials` (None: anonymous, granted nothing)."""
        if credentials is not None and credentials != login:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="slipway-test"')
            self.end_headers()
            return
        subject = login.split(":", 1)[0] if credentials else ""
        access = []
        for scope in scopes if subject else []:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        jwt = token(subject, access)
        body = json.dumps({"token": jwt, "access_token": jwt, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
