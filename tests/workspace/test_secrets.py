"""The secret filter: which files are never sent, which tokens are redacted, what is left alone."""

from __future__ import annotations

import pytest

from oropendola_ls.secrets import redact_secrets, secret_file_kind

# -- files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    ".env", ".env.local", ".env.production", "config/.env.test", ".env.example", ".envrc",
    "docker/prod.env", "certs/server.pem", "certs/server.key", "keystore.p12", "cert.pfx",
    "android/release.keystore", "app.jks", "id_rsa", "home/.ssh/id_ed25519", "id_ecdsa",
    "id_dsa", ".ssh/config", ".netrc", ".pgpass", "credentials", "credentials.json",
    ".aws/credentials", ".npmrc", ".pypirc", "secrets.yaml", "secrets.json", "config/secrets.yml",
    "app.secrets.toml", "my-service-account.json", "client_secret_123.apps.json",
    "gcp-credentials.json", "terraform.tfstate", "prod.tfvars", ".git-credentials",
    ".docker/config.json", ".kube/config", "ID_RSA", "AuthKey_ABC123.p8", ".htpasswd",
])
def test_secret_files(path: str) -> None:
    assert secret_file_kind(path) is not None


@pytest.mark.parametrize("path", [
    "src/app.py", "README.md", "package.json", "id_rsa.pub", ".ssh/id_ed25519.pub",
    "src/secrets.py", "environment.py", "docs/env.md", "keys.py", "src/credentials_form.tsx",
    "config/settings.yaml", "pem", "src/token.ts", "tests/test_env.py", "envoy.yaml",
])
def test_ordinary_files(path: str) -> None:
    assert secret_file_kind(path) is None


def test_env_examples_are_secret_files_too() -> None:
    # The design says `.env*`; an example file with a real key pasted in is a common mistake.
    for name in (".env.example", ".env.sample", ".env.template", ".env.dist"):
        assert secret_file_kind(name) == "dotenv"


# -- tokens ---------------------------------------------------------------------------------------

GH = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2

TOKENS = [
    ("aws_access_key_id", "key = AKIA" + "Q3EGZ7W2NB5XK4PL"),
    ("aws_access_key_id", "temporary ASIA" + "Q3EGZ7W2NB5XK4PL in the log"),
    ("aws_secret_access_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz9KEY"),
    ("github_token", f"token {GH} here"),
    ("github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
    ("gitlab_token", "GL=glpat-xY9zAbCdEfGhIjKlMnOp"),
    ("slack_token", "xoxb-123456789012-abcdefghijkl"),
    ("slack_webhook", "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("stripe_key", "stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'"),
    ("stripe_key", "rk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("google_api_key", "maps('AIzaSyD-1234567890abcdefghijklmnopqrs')"),
    ("openai_key", "client = OpenAI(api_key='sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12')"),
    ("openai_key", "sk-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv"),
    ("anthropic_key", "sk-ant-api03-Ab12Cd34Ef56Gh78Ij90Kl12Mn34"),
    ("jwt", "jwt: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.SflKxwRJSMeKKF2QT4fwpMeJf36P"),
    ("url_password", "DATABASE_URL=postgres://app:Xy7!pQ2zR9@db.internal:5432/app"),
    ("bearer_token", 'curl -H "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0"'),
    ("password", 'DB_PASSWORD = "S3cure!Passw0rd"'),
    ("password", "password: hunter2hunter2"),
    ("password", "spring.datasource.password=Kx93!mQz81"),
    ("api_key", 'OPENAI_API_KEY = "sk-canaryabcdefgh"'),
    ("api_key", '{"apiKey": "a1b2c3d4e5f6a7b8"}'),
    ("token", "export API_TOKEN=abc123def456ghi"),
    ("secret", 'client_secret = "9a8b7c6d5e4f3a2b1c"'),
    ("secret", "SECRET_KEY = 'django-insecure-9a8b7c6d5e'"),
    ("credential", "credentials: Zm9vOmJhcjEyMzQ1"),
    ("auth", "AUTH = tok_9a8b7c6d5e4f"),
    ("private_key", '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAA'
                    'SCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n"'),
]


@pytest.mark.parametrize(("kind", "text"), TOKENS)
def test_redacts(kind: str, text: str) -> None:
    out, counts = redact_secrets(text)
    assert f"[REDACTED:{kind}]" in out, out
    assert counts[kind] >= 1


def test_keeps_the_name_replaces_only_the_value() -> None:
    out, _ = redact_secrets('OPENAI_API_KEY = "sk-canary-0123456789abcdef"\nx = 1\n')
    assert out.startswith('OPENAI_API_KEY = "[REDACTED:')
    assert out.endswith('"\nx = 1\n')
    assert "canary" not in out
    out, _ = redact_secrets("export DB_PASS=p4ssw0rd99 && make\n")
    assert out == "export DB_PASS=[REDACTED:password] && make\n"
    out, _ = redact_secrets("url = 'https://admin:Sup3rS3cret@db.example.com/app'")
    assert out == "url = 'https://admin:[REDACTED:url_password]@db.example.com/app'"


def test_pem_block_redacted_whole() -> None:
    body = "\n".join(["MIIEowIBAAKCAQEA" + "Zq8Kx3Lm9Np2Qr5Tv7Wy0" * 3] * 6)
    text = (f"before\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n"
            "-----END RSA PRIVATE KEY-----\nafter\n")
    out, counts = redact_secrets(text)
    assert out == "before\n[REDACTED:private_key]\nafter\n"
    assert counts == {"private_key": 1}


def test_pem_block_without_end_line() -> None:
    body = "\n".join(["MIIEowIBAAKCAQEA" + "Zq8Kx3Lm9Np2Qr5Tv7Wy0" * 3] * 3)
    out, _ = redact_secrets(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n\ndone\n")
    assert "Zq8Kx3" not in out
    assert out.endswith("\n\ndone\n")


def test_pgp_private_key_block() -> None:
    body = "\n".join(["lQOYBF" + "Zq8Kx3Lm9Np2Qr5Tv7Wy0" * 3] * 3)
    text = f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{body}\n-----END PGP PRIVATE KEY BLOCK-----\n"
    out, _ = redact_secrets(text)
    assert out == "[REDACTED:private_key]\n"


def test_redaction_is_idempotent() -> None:
    text = 'password = "S3cure!Passw0rd"\nkey AKIA' + "Q3EGZ7W2NB5XK4PL\n"
    once, _ = redact_secrets(text)
    twice, counts = redact_secrets(once)
    assert twice == once
    assert not counts


@pytest.mark.parametrize("text", [
    'password = ""',
    "password = 'changeme'",
    'api_key: "<your-api-key>"',
    "SECRET_KEY=${SECRET_KEY}",
    'token = "xxxxxxxxxxxx"',
    "password: ********",
    'AWS_SECRET = os.environ["AWS_SECRET"]',
    "token = short",
    'API_KEY = "your_api_key_here"',
    "export OPENAI_API_KEY=<your key>",
    "password: {{ vault_password }}",
    'secret = "%(secret)s"',
])
def test_placeholders_are_kept(text: str) -> None:
    out, counts = redact_secrets(text)
    assert out == text
    assert not counts


NORMAL_PYTHON = '''\
"""Authentication helpers."""

import getpass
import os
import secrets

API_KEY_ENV = "OPENAI_API_KEY"
PASSWORD_MIN_LENGTH = 12
AUTH_USER_MODEL = "accounts.User"
TOKEN_TYPE = "Bearer"
SECRET_HEADER = "X-Secret-Sig"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def authenticate(username: str, password: str) -> bool:
    token = get_token(username)
    password_hash = hash_password(password)
    api_key = os.getenv("OPENAI_API_KEY", "")
    secret = secrets.token_hex(16)
    if token == "expired-token-value":
        return False
    auth_header = f"Bearer {token}"
    credentials = Credentials(api_key=API_KEY, api_secret=API_SECRET)
    tokens = tokenizer.encode(text)
    expected_token = "IDENTIFIER"
    max_tokens: int = 4096
    self.password = password
    passport_number = read_passport()
    return check(password_hash, auth_header, credentials, tokens)


class Lexer:
    def next_token(self) -> Token:
        token = Token(TokenType.IDENT, self.value)
        for key, value in sorted(self.keys.items()):
            pass
        return token


password = getpass.getpass("Password: ")
PATTERN = r"(?P<name>\\w+)\\s*=\\s*(?P<value>.+)"
'''

NORMAL_JS = '''\
import { getToken } from './auth';

const SECRET_PATTERN = /secret/i;
const token = await getToken();
const headers = { Authorization: `Bearer ${token}` };
export const schema = z.object({ password: z.string().min(8), apiKey: z.string() });
if (password !== confirm || password === "") throw new Error("mismatch");
const { token: refreshToken } = req.body;
const apiKey = process.env.API_KEY!;
function authorize(user) { return user.token || ""; }
export default { auth: true, tokenUrl: "https://example.com/oauth/token" };
'''

NORMAL_MARKDOWN = '''\
# Setup

Set `OPENAI_API_KEY` in your environment:

```sh
export OPENAI_API_KEY=<your key>
export DATABASE_URL=postgres://localhost/app
```

The `auth` module handles tokens: call `auth.login()` and keep the token in memory.
Password: at least 12 characters. See https://user@example.com/docs for details.
'''

NORMAL_CONFIG = '''\
services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: example
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
  app:
    secrets:
      - db_password
    env:
      - name: TOKEN
        valueFrom:
          secretKeyRef: {name: app-secret, key: token}
jobs:
  release:
    steps:
      - with:
          token: ${{ secrets.GITHUB_TOKEN }}
secretName: tls-cert
auth: true
[tool.poetry]
authors = ["Jane <jane@example.com>"]
keywords = ["auth", "token"]
'''

NORMAL_GO_SHELL = '''\
func Login(ctx context.Context) (string, error) {
\ttoken, err := auth.Token(ctx)
\tpassword := os.Getenv("DB_PASSWORD")
\treturn token, err
}
read -rs PASSWORD
curl -H "Authorization: Bearer $TOKEN" https://api.example.com
export GITHUB_TOKEN="$(gh auth token)"
$password = $_POST['password'];
@password = params[:password]
private static final String PASSWORD_PARAM = "password";
'''


@pytest.mark.parametrize("text", [NORMAL_PYTHON, NORMAL_JS, NORMAL_MARKDOWN, NORMAL_CONFIG,
                                  NORMAL_GO_SHELL])
def test_ordinary_code_is_not_mangled(text: str) -> None:
    out, counts = redact_secrets(text)
    assert out == text, [(a, b) for a, b in zip(text.splitlines(), out.splitlines(), strict=False)
                         if a != b]
    assert not counts
    assert out is text  # nothing to redact: not even copied


def test_unicode_text_whose_lower_case_is_longer() -> None:
    # "İ" lower-cases to two characters: offsets shift, the slow path must still work.
    text = 'İstanbul = 1\npassword = "S3cure!Passw0rd"\n'
    out, counts = redact_secrets(text)
    assert out == 'İstanbul = 1\npassword = "[REDACTED:password]"\n'
    assert counts == {"password": 1}


def test_huge_line_without_newlines_is_fast() -> None:
    import time

    text = ("token" + "a" * 5000 + " ") * 200  # trigger words in one 1 MB line
    started = time.perf_counter()
    redact_secrets(text)
    assert time.perf_counter() - started < 2.0
