#!/usr/bin/env python3
"""Steward's OAuth 2.0 endpoints as a third-party client library sees them.

authlib's OAuth2Session (client_secret_basic) fetches a client-credentials token, lists leads
with it, introspects it (RFC 7662), revokes it (RFC 7009), then lists and introspects again.
Prints one JSON object with what it saw and exits 1 when the revoked token is still active or
still opens the API.

Usage: check_oauth.py BASE_URL CLIENT_ID CLIENT_SECRET
"""

import json
import sys

from authlib.integrations.requests_client import OAuth2Session


def main() -> int:
    base, client_id, client_secret = sys.argv[1:4]
    session = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_basic")
    token = session.fetch_token(f"{base}/oauth/token", grant_type="client_credentials")
    access_token = token["access_token"]

    leads = session.get(f"{base}/api/v1/leads", params={"limit": 5})
    before = session.introspect_token(f"{base}/oauth/introspect", token=access_token)
    revoked = session.revoke_token(f"{base}/oauth/revoke", token=access_token, token_type_hint="access_token")
    leads_after = session.get(f"{base}/api/v1/leads", params={"limit": 5})
    after = session.introspect_token(f"{base}/oauth/introspect", token=access_token)

    report = {
        "token_type": token.get("token_type"),
        "scope": token.get("scope"),
        "leads_status": leads.status_code,
        "leads": leads.json().get("data"),
        "introspection_before": before.json(),
        "revoke_status": revoked.status_code,
        "revoke_body": revoked.text,
        "leads_status_after_revoke": leads_after.status_code,
        "introspection_after": after.json(),
    }
    print(json.dumps(report))
    if report["introspection_after"] != {"active": False} or leads_after.status_code != 401:
        print("the revoked token still works", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
