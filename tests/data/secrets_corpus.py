"""Planted secrets of real formats, and look-alikes that must survive redaction.

Every secret is made up, and assembled when this module is imported (a prefix joined to
a body drawn from a seeded generator), so that no file of the repository holds one
whole: secret scanners (GitHub's push protection among them) have nothing to flag.
"""

from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass

_rng = random.Random(14)
_ALNUM = string.ascii_letters + string.digits
_UPPER = string.ascii_uppercase + string.digits
_HEX = "0123456789abcdef"
_B64 = _ALNUM + "+/"
_URLSAFE = _ALNUM + "-_"


def _body(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _j(*parts: str) -> str:
    return "".join(parts)


@dataclass(frozen=True)
class Planted:
    """A message carrying ``secret``, which must not survive anywhere."""

    name: str
    secret: str
    message: str


def _pem(label: str) -> str:
    lines = "\n".join(_body(64, _B64) for _ in range(5))
    return _j(
        "-----BEGIN ",
        label,
        " PRIVATE KEY-----\n",
        lines,
        "\n-----END ",
        label,
        " PRIVATE KEY-----",
    )


def _jwt() -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    claims = base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"Pat"}').decode().rstrip("=")
    return _j(header, ".", claims, ".", _body(43, _URLSAFE))


#: The team's own format in the corpus's team (``redact.patterns``).
TEAM_PATTERN = "ACME-[0-9]{6}"
#: A secret Corral holds (an environment variable's value), for the harness's redactor.
HELD_NAME = "CRM_API_TOKEN"
HELD_VALUE = _j("crm", _body(6, string.ascii_lowercase), "-", _body(10, string.ascii_lowercase))

_uuid = "-".join(_body(n, _HEX) for n in (8, 4, 4, 4, 12))
_uuid2 = "-".join(_body(n, _HEX) for n in (8, 4, 4, 4, 12))

_S = [
    ("AWS access key id", _j("AK", "IA", _body(16, _UPPER)), "Deploy fails, I use {} in us-east-1"),
    ("AWS temporary key id", _j("AS", "IA", _body(16, _UPPER)), "session key {} expired?"),
    ("AWS secret key", _body(40, _B64), "aws_secret_access_key = {}"),
    ("GCP API key", _j("AI", "za", _body(35, _URLSAFE)), "maps key is {} for staging"),
    ("GCP OAuth token", _j("ya", "29.", _body(60, _URLSAFE)), "curl -H 'x: {}'"),
    (
        "GCP service account key",
        _pem("").replace("BEGIN  ", "BEGIN ").replace("END  ", "END ").replace("\n", "\\n"),
        '{{"type": "service_account", "private_key": "{}", "client_email": "x@y.iam"}}',
    ),
    (
        "Azure storage key",
        _body(86, _B64) + "==",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={};EndpointSuffix=core.windows.net",
    ),
    ("Azure client secret", _j(_body(3, _ALNUM), "8Q~", _body(34, _ALNUM)), "client secret {}"),
    (
        "Azure SAS signature",
        _body(44, _ALNUM) + "%3D",
        "https://acme.blob.core.windows.net/c?sv=2022-11-02&sig={}",
    ),
    (
        "Slack bot token",
        _j("xo", "xb-", _body(12, string.digits), "-", _body(13, string.digits), "-", _body(24)),
        "bot token {}",
    ),
    (
        "Slack user token",
        _j(
            "xo",
            "xp-",
            _body(12, string.digits),
            "-",
            _body(12, string.digits),
            "-",
            _body(32, _HEX),
        ),
        "use {} please",
    ),
    (
        "Slack app token",
        _j("xa", "pp-1-", _body(11, _UPPER), "-", _body(13, string.digits), "-", _body(64, _HEX)),
        "SLACK_APP_TOKEN {}",
    ),
    (
        "Slack webhook",
        _j(
            "https://hooks.",
            "slack.com/services/T",
            _body(10, _UPPER),
            "/B",
            _body(10, _UPPER),
            "/",
            _body(24),
        ),
        "post to {} from CI",
    ),
    ("GitHub classic PAT", _j("gh", "p_", _body(36)), "my PAT {} has repo scope"),
    ("GitHub OAuth token", _j("gh", "o_", _body(36)), "oauth {}"),
    ("GitHub app token", _j("gh", "s_", _body(36)), "installation {} works"),
    ("GitHub fine-grained PAT", _j("github", "_pat_", _body(22), "_", _body(59)), "new style {}"),
    ("GitLab PAT", _j("gl", "pat-", _body(20, _URLSAFE)), "gitlab says {}"),
    (
        "OpenAI project key",
        _j("sk", "-proj-", _body(48, _URLSAFE), "T3Blbk", "FJ", _body(48, _URLSAFE)),
        "OPENAI key {}",
    ),
    ("OpenAI legacy key", _j("sk", "-", _body(48)), "old key: {}"),
    ("Anthropic key", _j("sk", "-ant-api03-", _body(93, _URLSAFE), "AA"), "claude key {}"),
    ("Stripe live secret", _j("sk", "_live_", _body(24)), "stripe {}"),
    ("Stripe restricted key", _j("rk", "_live_", _body(24)), "restricted {}"),
    ("Stripe webhook secret", _j("wh", "sec_", _body(32)), "webhook signing {}"),
    ("JWT", _jwt(), "Authorization header was {}"),
    ("RSA private key", _pem("RSA"), "here is the key:\n{}\nthanks"),
    ("OpenSSH private key", _pem("OPENSSH"), "```\n{}\n```"),
    ("EC private key", _pem("EC"), "{}"),
    (
        "Postgres URL password",
        _body(16),
        "DATABASE_URL=postgresql://corral:{}@db.internal:5432/corral",
    ),
    ("Redis URL password", _body(20), "redis://:{}@cache:6379/0 is the queue"),
    ("HTTPS basic auth", _body(14), "clone https://bot:{}@git.example.com/acme/app.git"),
    ("password line", _j("Summer", _body(6, string.digits), "!x"), "password: {}"),
    ("env password", _body(12), "DB_PASSWORD={}"),
    ("JSON api key", _body(32, _ALNUM), '{{"api_key": "{}", "region": "eu"}}'),
    ("UUID token", _uuid, "the API token is {} for the sandbox"),
    ("UUID secret", _uuid2, "client secret: {}"),
    ("random secret near word", _body(28), "here's the secret {} don't share"),
    (
        "Bearer token",
        _body(40, _URLSAFE),
        "curl -H 'Authorization: Bearer {}' https://api.example.com",
    ),
    ("npm token", _j("np", "m_", _body(36)), "//registry.npmjs.org/:_authToken={}"),
    ("SendGrid key", _j("SG", ".", _body(22, _URLSAFE), ".", _body(43, _URLSAFE)), "mail via {}"),
    (
        "Discord bot token",
        _j("MT", _body(24, _ALNUM), ".", _body(6, _URLSAFE), ".", _body(38, _URLSAFE)),
        "discord {}",
    ),
    ("Hugging Face token", _j("hf", "_", _body(34, string.ascii_letters)), "HF {}"),
    ("PyPI token", _j("pypi-", "AgEIcHlwaS5vcmc", _body(60, _URLSAFE)), "twine upload -p {}"),
    ("Twilio API key", _j("S", "K", _body(32, _HEX)), "twilio {}"),
    ("Mailgun key", _j("ke", "y-", _body(32, _HEX)), "mailgun {}"),
    ("DigitalOcean token", _j("do", "p_v1_", _body(64, _HEX)), "doctl auth init -t {}"),
    ("Shopify token", _j("sh", "pat_", _body(32, _HEX)), "shopify admin {}"),
    ("team pattern", _j("ACME-", _body(6, string.digits)), "our contract id {} is secret"),
    ("held secret", HELD_VALUE, "the CRM one is {} I think"),
]

SECRETS: tuple[Planted, ...] = tuple(Planted(n, s, m.format(s)) for n, s, m in _S)

_png = base64.b64encode(bytes(_rng.randrange(256) for _ in range(300))).decode()

#: Text that looks a little like a secret and must reach the model exactly as written.
LOOKALIKES: tuple[str, ...] = (
    "Fixed in commit 3f9a1c2e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f, please review",
    "cherry-pick a1b2c3d onto release",
    "request id 123e4567-e89b-12d3-a456-426614174000 failed with 502",
    "order f47ac10b-58cc-4372-a567-0e02b2c3d479 shipped",
    f"![logo](data:image/png;base64,{_png})",
    "antidisestablishmentarianism and internationalization are long words",
    "see https://example.com/docs/install?lang=en#step-3",
    "the repo is at https://github.com/acme/corral/pull/1234",
    "ssh git@github.com:acme/app.git works for me",
    "upgrade to v2.14.3-rc.1 then Python 3.11.4",
    "channel C0123ABCDEF and user U0ADMIN and <@U012AB3CD>",
    "Slack ts 1712345678.123456 is the thread",
    "mail pat@example.com about it",
    "the server is 10.0.12.7:8443",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b4b0b822cd15d6c15b0f00a08",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "pod web-7d9f8b6c5d-x2k4z restarted",
    "max_tokens=4096 and temperature=0.2",
    "sort_key=created_at",
    "Primary key: user_id",
    "The token bucket refills 50 per minute",
    "password reset link sent to the customer",
    "api_key: see the vault",
    "password: ${DB_PASSWORD}",
    "export OPENAI_API_KEY=$OPENAI_API_KEY",
    "we use sk-learn and scikit-learn",
    "the task-1234 board",
    "xoxo, the ops team",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 pat@laptop",
    "ticket ACME-12345 is open",
    "PROJ-4521 blocks the release",
    "call +1 415 555 0100",
    "/usr/local/lib/python3.11/site-packages/corral/__init__.py",
    "cron */5 * * * * runs it",
    "colour #ff00aa on the button",
    "ENV=production PORT=3000 LOG_LEVEL=debug",
    "KEYBOARD=us compass: north",
    "Bearer of bad news, the deploy failed",
    "md5 d41d8cd98f00b204e9800998ecf8427e of the empty file",
    "the author: Pat, auth flow reviewed",
    "AKIA alone is a prefix, not a key",
    "a UUID like 550e8400-e29b-41d4-a716-446655440000 names the tenant",
    "tokens used: 12345, cost $0.42",
)
