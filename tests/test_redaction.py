"""Tests for prefloop.redaction: provider, keyword and entropy detectors, look-alikes that
must survive, idempotence and scaling.

Every secret below is fake: bodies come from a seeded generator with the published shape
of each provider's credentials, and prefixes are split so that the source file itself
holds no scanner-shaped literal.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import random
import string
import time

import pytest

from prefloop.redaction import KINDS, Finding, contains_secret, find_secrets, redact

UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
DIGITS = string.digits
LETTERS = UPPER + LOWER
ALNUM = LETTERS + DIGITS
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = DIGITS + "abcdef"


def fake(n: int, alphabet: str = ALNUM, *, seed: str) -> str:
    """A deterministic random string that uses every character class of ``alphabet``."""
    rng = random.Random(seed)
    chars = [rng.choice(alphabet) for _ in range(n)]
    pools = [p for p in (UPPER, LOWER, DIGITS) if set(p) & set(alphabet)]
    for i, pool in enumerate(pools):
        chars[(i * 5 + 1) % n] = rng.choice([c for c in pool if c in alphabet])
    return "".join(chars)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_jwt(seed: str) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": "1234567890", "name": "Jane", "iat": 1716239022}).encode())
    return f"{header}.{payload}.{fake(43, B64URL, seed=seed)}"


def make_pem(label: str, seed: str, lines: int = 8) -> str:
    body = [fake(64, B64, seed=f"{seed}{i}") for i in range(lines)]
    body.append(fake(24, B64, seed=f"{seed}-tail") + "==")
    begin = "-----BEGIN " + label + " PRIVATE" + " KEY-----"
    end = "-----END " + label + " PRIVATE" + " KEY-----"
    return "\n".join([begin, *body, end])


def digits(n: int, seed: str) -> str:
    rng = random.Random(seed)
    return str(rng.randint(1, 9)) + "".join(rng.choice(DIGITS) for _ in range(n - 1))


# --- fake credentials, one per shape ------------------------------------------------------

AWS_KEY_ID = "AK" + "IA" + fake(16, UPPER + DIGITS, seed="aws-id")
AWS_STS_KEY_ID = "AS" + "IA" + fake(16, UPPER + DIGITS, seed="aws-sts")
AWS_SECRET = fake(40, B64, seed="aws-secret")
GH_PAT = "gh" + "p_" + fake(36, seed="ghp")
GH_OAUTH = "gh" + "o_" + fake(36, seed="gho")
GH_USER = "gh" + "u_" + fake(36, seed="ghu")
GH_SERVER = "gh" + "s_" + fake(36, seed="ghs")
GH_REFRESH = "gh" + "r_" + fake(76, seed="ghr")
GH_FINE = "github" + "_pat_" + fake(22, seed="fg1") + "_" + fake(59, seed="fg2")
GITLAB = "gl" + "pat-" + fake(20, B64URL, seed="glpat")
SLACK_BOT = "xo" + "xb-" + digits(12, "s1") + "-" + digits(13, "s2") + "-" + fake(24, seed="s3")
SLACK_USER = (
    "xo" + "xp-" + "-".join(digits(12, f"u{i}") for i in range(3)) + "-" + fake(32, HEX, seed="u")
)
SLACK_HOOK_PATH = (
    "T" + fake(8, UPPER + DIGITS, seed="t") + "/B" + fake(10, UPPER + DIGITS, seed="b") + "/"
) + fake(24, seed="hook")
STRIPE_LIVE = "sk" + "_live_" + fake(24, seed="stripe-live")
STRIPE_TEST = "sk" + "_test_" + fake(24, seed="stripe-test")
STRIPE_RESTRICTED = "rk" + "_live_" + fake(24, seed="stripe-rk")
GOOGLE = "AI" + "za" + fake(35, B64URL, seed="google")
OPENAI_PROJECT = "sk-" + "proj-" + fake(64, B64URL, seed="openai-proj")
OPENAI_LEGACY = "sk-" + fake(20, seed="oa1") + "T3Blbk" + "FJ" + fake(20, seed="oa2")
ANTHROPIC = "sk-" + "ant-api03-" + fake(93, B64URL, seed="anthropic") + "AA"
HUGGINGFACE = "hf" + "_" + fake(34, LETTERS, seed="hf")
NPM = "np" + "m_" + fake(36, seed="npm")
PYPI = "py" + "pi-AgEIcHlwaS5vcmc" + fake(120, B64URL, seed="pypi")
TWILIO_KEY = "S" + "K" + fake(32, HEX, seed="twilio-sk")
TWILIO_SID = "A" + "C" + fake(32, HEX, seed="twilio-ac")
SENDGRID = "S" + "G." + fake(22, B64URL, seed="sg1") + "." + fake(43, B64URL, seed="sg2")
MAILGUN = "ke" + "y-" + fake(32, HEX, seed="mailgun")
DISCORD = (
    b64url(b"1098765432109876543")
    + "."
    + fake(6, B64URL, seed="d1")
    + "."
    + fake(38, B64URL, seed="d2")
)
DISCORD_HOOK_PATH = digits(19, "dw") + "/" + fake(68, B64URL, seed="dw")
TELEGRAM = digits(10, "tg") + ":" + "AA" + fake(33, B64URL, seed="tg")
JWT = make_jwt("jwt")
RSA_KEY = make_pem("RSA", "rsa")
OPENSSH_KEY = make_pem("OPENSSH", "ssh", lines=6)
PKCS8_KEY = make_pem("", "pkcs8").replace("BEGIN  ", "BEGIN ").replace("END  ", "END ")
AZURE_ACCOUNT_KEY = fake(86, B64, seed="azure") + "=="
AZURE_SAS_KEY = fake(43, B64, seed="azure-sas") + "="
BASIC = base64.b64encode(("deploy:" + fake(16, seed="basic")).encode()).decode()
BEARER = fake(40, ALNUM + "-._~", seed="bearer")
URL_PW = fake(18, ALNUM + "-_~", seed="urlpw")
URL_PW2 = fake(12, ALNUM, seed="urlpw2")
PASSWORD = "Tr0ub4dor&3xQ"
PASSWORD2 = fake(16, ALNUM + "!@#^*-_=+", seed="pw2")
PASSWORD3 = "hunter2!x"
DJANGO_KEY = "django-insecure-" + fake(50, ALNUM + "!@#^&*(-_=+)", seed="django")
HEX_SECRET = fake(32, HEX, seed="hex-secret")
LONG_SECRET = fake(48, ALNUM, seed="long-secret")
WEBHOOK_SECRET = "whsec_" + fake(32, seed="whsec")
K8S_PASSWORD = base64.b64encode(b"prod-db-Pa55word!").decode()
SHOPIFY = "shp" + "at_" + fake(32, HEX, seed="shopify")
DIGITALOCEAN = "do" + "p_v1_" + fake(64, HEX, seed="digitalocean")
DATABRICKS = "da" + "pi" + fake(32, HEX, seed="databricks")
VAULT = "hv" + "s." + fake(90, B64URL, seed="vault")
GRAFANA = "gl" + "sa_" + fake(32, seed="grafana") + "_" + fake(8, HEX, seed="grafana-crc")
AGE = "AGE-SECRET-" + "KEY-1" + fake(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", seed="age")
ENTROPY_B64 = fake(44, B64, seed="entropy")
ENTROPY_HEX = fake(64, HEX, seed="entropy-hex")

# (case id, expected kind, secret, code where @@ marks the secret)
SECRET_CASES: list[tuple[str, str, str, str]] = [
    # AWS
    ("aws-id-py", "aws_access_key", AWS_KEY_ID, 'AWS_ACCESS_KEY_ID = "@@"\n'),
    (
        "aws-id-ini",
        "aws_access_key",
        AWS_KEY_ID,
        "[default]\naws_access_key_id = @@\nregion = eu-west-1\n",
    ),
    ("aws-id-shell", "aws_access_key", AWS_KEY_ID, "export AWS_ACCESS_KEY_ID=@@\naws s3 ls\n"),
    ("aws-id-json", "aws_access_key", AWS_STS_KEY_ID, '{"Credentials": {"AccessKeyId": "@@"}}'),
    (
        "aws-id-go",
        "aws_access_key",
        AWS_STS_KEY_ID,
        'creds := credentials.NewStaticCredentials("@@", secret, "")\n',
    ),
    ("aws-secret-ini", "aws_secret_key", AWS_SECRET, "aws_secret_access_key = @@\n"),
    ("aws-secret-env", "aws_secret_key", AWS_SECRET, "AWS_SECRET_ACCESS_KEY=@@\n"),
    (
        "aws-secret-js",
        "aws_secret_key",
        AWS_SECRET,
        "const s3 = new S3({ secretAccessKey: '@@' });\n",
    ),
    ("aws-secret-json", "aws_secret_key", AWS_SECRET, '{"SecretAccessKey": "@@", "Expiration": 1}'),
    ("aws-secret-java", "aws_secret_key", AWS_SECRET, 'String awsSecretKey = "@@";\n'),
    # GitHub
    ("ghp-py", "github_token", GH_PAT, 'g = Github("@@")\nrepo = g.get_repo("org/x")\n'),
    ("gho-ts", "github_token", GH_OAUTH, "const octokit = new Octokit({ auth: `@@` });\n"),
    ("ghu-yaml", "github_token", GH_USER, "steps:\n  - env:\n      GH_TOKEN: @@\n"),
    (
        "ghs-url",
        "github_token",
        GH_SERVER,
        "git clone https://x-access-token:@@@github.com/o/r.git\n",
    ),
    ("ghr-json", "github_token", GH_REFRESH, '{"refresh_token": "@@", "expires_in": 15811200}'),
    ("github-pat-env", "github_token", GH_FINE, "GITHUB_TOKEN=@@\n"),
    (
        "github-pat-go",
        "github_token",
        GH_FINE,
        'client := github.NewClient(nil).WithAuthToken("@@")\n',
    ),
    # GitLab, Slack
    ("glpat-yaml", "gitlab_token", GITLAB, "variables:\n  GITLAB_TOKEN: @@\n"),
    (
        "glpat-curl",
        "gitlab_token",
        GITLAB,
        'curl --header "PRIVATE-TOKEN: @@" https://gitlab.com/api/v4/projects\n',
    ),
    ("slack-bot-py", "slack_token", SLACK_BOT, 'client = WebClient(token="@@")\n'),
    ("slack-user-env", "slack_token", SLACK_USER, "SLACK_USER_TOKEN=@@\n"),
    (
        "slack-webhook-js",
        "slack_webhook",
        SLACK_HOOK_PATH,
        'await fetch("https://hooks.slack.com/services/@@", { method: "POST" });\n',
    ),
    # Stripe, Google
    ("stripe-live-py", "stripe_key", STRIPE_LIVE, 'stripe.api_key = "@@"\n'),
    ("stripe-test-js", "stripe_key", STRIPE_TEST, "const stripe = require('stripe')('@@');\n"),
    ("stripe-rk-go", "stripe_key", STRIPE_RESTRICTED, 'stripe.Key = "@@"\n'),
    (
        "google-js",
        "google_api_key",
        GOOGLE,
        'const firebaseConfig = {\n  apiKey: "@@",\n  projectId: "demo",\n};\n',
    ),
    ("google-java", "google_api_key", GOOGLE, 'private static final String MAPS = "@@";\n'),
    # AI providers
    ("openai-proj-py", "openai_key", OPENAI_PROJECT, 'client = OpenAI(api_key="@@")\n'),
    ("openai-legacy-env", "openai_key", OPENAI_LEGACY, "OPENAI_API_KEY=@@\n"),
    ("anthropic-env", "anthropic_key", ANTHROPIC, "ANTHROPIC_API_KEY=@@\n"),
    (
        "anthropic-ts",
        "anthropic_key",
        ANTHROPIC,
        "const client = new Anthropic({ apiKey: '@@' });\n",
    ),
    ("hf-py", "huggingface_token", HUGGINGFACE, 'login(token="@@")\n'),
    ("hf-shell", "huggingface_token", HUGGINGFACE, "huggingface-cli login --token @@\n"),
    # Package registries
    ("npm-npmrc", "npm_token", NPM, "//registry.npmjs.org/:_authToken=@@\n"),
    ("pypi-pypirc", "pypi_token", PYPI, "[pypi]\nusername = __token__\npassword = @@\n"),
    ("pypi-twine", "pypi_token", PYPI, "twine upload -u __token__ -p @@ dist/*\n"),
    # Messaging and mail
    ("twilio-sk-py", "twilio_key", TWILIO_KEY, 'client = Client("@@", api_secret, account)\n'),
    ("twilio-ac-js", "twilio_key", TWILIO_SID, "const accountSid = '@@';\n"),
    ("sendgrid-py", "sendgrid_key", SENDGRID, 'sg = SendGridAPIClient("@@")\n'),
    ("mailgun-py", "mailgun_key", MAILGUN, 'requests.post(url, auth=("api", "@@"), data=data)\n'),
    ("discord-py", "discord_token", DISCORD, 'bot.run("@@")\n'),
    ("discord-js", "discord_token", DISCORD, "client.login('@@');\n"),
    (
        "discord-webhook",
        "discord_webhook",
        DISCORD_HOOK_PATH,
        'WEBHOOK = "https://discord.com/api/webhooks/@@"\n',
    ),
    ("telegram-py", "telegram_bot_token", TELEGRAM, 'bot = telebot.TeleBot("@@")\n'),
    (
        "telegram-url",
        "telegram_bot_token",
        TELEGRAM,
        'requests.get(f"https://api.telegram.org/bot@@/sendMessage", params=p)\n',
    ),
    # JWTs
    ("jwt-curl", "jwt", JWT, "curl -H 'Authorization: Bearer @@' https://api.example.com/me\n"),
    ("jwt-ts", "jwt", JWT, "const session: Session = { accessToken: '@@', user };\n"),
    ("jwt-json", "jwt", JWT, '{"id_token": "@@"}'),
    # Other platforms
    (
        "shopify-rb",
        "shopify_token",
        SHOPIFY,
        "ShopifyAPI::Context.setup(api_key: key, access_token: '@@')\n",
    ),
    (
        "digitalocean-tf",
        "digitalocean_token",
        DIGITALOCEAN,
        'provider "digitalocean" {\n  token = "@@"\n}\n',
    ),
    (
        "databricks-cfg",
        "databricks_token",
        DATABRICKS,
        "[DEFAULT]\nhost = https://adb-1.azuredatabricks.net\ntoken = @@\n",
    ),
    ("vault-shell", "vault_token", VAULT, "VAULT_TOKEN=@@ vault kv get secret/app\n"),
    ("grafana-js", "grafana_token", GRAFANA, "const grafana = new Client({ url, token: '@@' });\n"),
    ("age-key", "age_secret_key", AGE, "# created: 2024-05-01\n# public key: age1qy...\n@@\n"),
    # Private keys
    ("pem-py", "private_key", RSA_KEY, 'KEY = """@@\n"""\n\nsign(KEY, payload)\n'),
    ("pem-file", "private_key", OPENSSH_KEY, "@@\n"),
    ("pem-yaml", "private_key", PKCS8_KEY, "tls:\n  key: |\n    @@\n  cert: ./cert.pem\n"),
    (
        "pem-json-escaped",
        "private_key",
        PKCS8_KEY.replace("\n", "\\n"),
        '{"type": "service_account", "private_key": "@@\\n", "client_email": "a@b.iam"}',
    ),
    # Credentials in URLs (only the password goes)
    (
        "url-postgres-env",
        "url_password",
        URL_PW,
        "DATABASE_URL=postgres://app_user:@@@db.internal:5432/app\n",
    ),
    ("url-redis-no-user", "url_password", URL_PW, 'REDIS_URL = "redis://:@@@cache:6379/0"\n'),
    (
        "url-mongo-srv",
        "url_password",
        URL_PW2,
        'uri = "mongodb+srv://admin:@@@cluster0.x1y2z.mongodb.net/?w=majority"\n',
    ),
    (
        "url-sqlalchemy",
        "url_password",
        URL_PW2,
        'engine = create_engine("mysql+pymysql://root:@@@localhost/shop")\n',
    ),
    ("url-amqp-yaml", "url_password", URL_PW, "broker_url: amqp://worker:@@@rabbitmq:5672//\n"),
    (
        "url-git-https",
        "url_password",
        URL_PW2,
        "git remote add origin https://ci-bot:@@@git.example.com/team/app.git\n",
    ),
    # Azure
    (
        "azure-conn-cs",
        "azure_storage_key",
        AZURE_ACCOUNT_KEY,
        'var conn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=@@;'
        'EndpointSuffix=core.windows.net";\n',
    ),
    (
        "azure-sas-json",
        "azure_shared_access_key",
        AZURE_SAS_KEY,
        '{"ServiceBus": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;'
        'SharedAccessKey=@@"}',
    ),
    # Authorization headers
    (
        "basic-curl",
        "basic_auth",
        BASIC,
        'curl -H "Authorization: Basic @@" https://ci.example.com\n',
    ),
    ("basic-py", "basic_auth", BASIC, 'headers = {"Authorization": "Basic @@"}\n'),
    ("basic-java", "basic_auth", BASIC, 'conn.setRequestProperty("Authorization", "Basic @@");\n'),
    ("bearer-py", "bearer_token", BEARER, 'session.headers["Authorization"] = "Bearer @@"\n'),
    ("bearer-http", "bearer_token", BEARER, "GET /v1/me HTTP/1.1\nAuthorization: Bearer @@\n"),
    # Keyword rule: passwords
    ("pw-py", "password", PASSWORD, 'DB_PASSWORD = "@@"\n'),
    (
        "pw-django",
        "password",
        PASSWORD2,
        "DATABASES = {'default': {'USER': 'app', 'PASSWORD': '@@', 'PORT': 5432}}\n",
    ),
    ("pw-env", "password", PASSWORD, "MYSQL_ROOT_PASSWORD=@@\nMYSQL_DATABASE=shop\n"),
    (
        "pw-yaml",
        "password",
        PASSWORD2,
        "spring:\n  datasource:\n    username: app\n    password: @@\n",
    ),
    ("pw-properties", "password", PASSWORD, "spring.datasource.password=@@\n"),
    (
        "pw-go",
        "password",
        PASSWORD3,
        'cfg := mysql.Config{User: "app", Passwd: "@@", Net: "tcp"}\n',
    ),
    ("pw-json", "password", PASSWORD2, '{"username": "admin", "password": "@@"}'),
    ("pw-php", "password", PASSWORD3, "$config = ['db_pass' => '@@'];\n"),
    ("pw-ts-annotated", "password", PASSWORD, 'const dbPassword: string = "@@";\n'),
    ("pw-java", "password", PASSWORD3, 'private static final String SMTP_PASSWORD = "@@";\n'),
    ("pw-go-typed", "password", PASSWORD3, 'var adminPwd string = "@@"\n'),
    (
        "pw-conn-string",
        "password",
        PASSWORD3,
        'var cs = "Server=sql1;Database=app;User Id=sa;Password=@@;";\n',
    ),
    ("pw-cli-flag", "password", PASSWORD2, "mysqldump --user=root --password=@@ shop > dump.sql\n"),
    ("pw-setter", "password", PASSWORD, 'props.setProperty("password", "@@");\n'),
    (
        "pw-kwarg",
        "password",
        PASSWORD3,
        'conn = psycopg2.connect(host="db", user="app", password="@@")\n',
    ),
    ("pw-compare", "password", PASSWORD, 'if password == "@@":\n    grant()\n'),
    ("pw-k8s-data", "password", K8S_PASSWORD, "kind: Secret\ndata:\n  password: @@\n"),
    (
        "pw-ruby",
        "password",
        PASSWORD2,
        'config.smtp_settings = { user_name: "app", password: "@@" }\n',
    ),
    ("pw-ruby-or-assign", "password", PASSWORD3, 'ENV["DB_PASSWORD"] ||= "@@"\n'),
    ("pw-compound-caps", "password", PASSWORD, "export PGPASSWORD=@@\npsql -h db -U app\n"),
    ("pw-sql", "password", PASSWORD3, "CREATE USER reporting WITH PASSWORD '@@';\n"),
    ("pw-docker-env", "password", URL_PW, "docker run -e POSTGRES_PASSWORD=@@ -d postgres:16\n"),
    ("pw-makefile", "password", PASSWORD, "DB_PASSWORD ?= @@\n"),
    (
        "pw-k8s-env",
        "password",
        PASSWORD3,
        "env:\n  - name: DB_PASSWORD\n    value: @@\n  - name: LOG_LEVEL\n    value: debug\n",
    ),
    (
        "pw-ecs-json",
        "password",
        PASSWORD2,
        '"environment": [{"name": "DB_PASSWORD", "value": "@@"}]',
    ),
    (
        "pw-dotnet-config",
        "password",
        PASSWORD3,
        '<appSettings>\n  <add key="DbPassword" value="@@" />\n</appSettings>\n',
    ),
    (
        "pw-xml-element",
        "password",
        PASSWORD3,
        "<datasource>\n  <password>@@</password>\n</datasource>\n",
    ),
    (
        "pw-curl-user",
        "password",
        PASSWORD3,
        "curl -u admin:@@ https://jenkins.example.com/api/json\n",
    ),
    ("pw-mysql-cli", "password", PASSWORD, "mysql -h db -u root -p@@ shop < schema.sql\n"),
    # Keyword rule: other secrets
    ("secret-django", "generic_secret", DJANGO_KEY, "SECRET_KEY = '@@'\n"),
    ("secret-flask", "generic_secret", LONG_SECRET, 'app.config["SECRET_KEY"] = "@@"\n'),
    ("secret-json-hex", "generic_secret", HEX_SECRET, '{"service": "maps", "api_key": "@@"}'),
    ("secret-env-jwt", "generic_secret", LONG_SECRET, "JWT_SECRET=@@\n"),
    ("secret-js-camel", "generic_secret", WEBHOOK_SECRET, "const stripeWebhookSecret = '@@';\n"),
    ("secret-yaml-client", "generic_secret", LONG_SECRET, "oauth:\n  client_secret: @@\n"),
    ("secret-go-struct", "generic_secret", HEX_SECRET, 'c := Config{Token: "@@", Retries: 3}\n'),
    (
        "secret-java-enc",
        "generic_secret",
        LONG_SECRET,
        'static final String ENCRYPTION_KEY = "@@";\n',
    ),
    ("secret-setenv", "generic_secret", HEX_SECRET, 'os.environ.setdefault("API_TOKEN", "@@")\n'),
    (
        "secret-header-dict",
        "generic_secret",
        HEX_SECRET,
        'requests.get(url, headers={"X-Api-Key": "@@"})\n',
    ),
    (
        "secret-query",
        "generic_secret",
        LONG_SECRET,
        'curl "https://api.example.com/v1/search?q=x&api_key=@@"\n',
    ),
    ("secret-shell-export", "generic_secret", LONG_SECRET, 'export SENTRY_AUTH_TOKEN="@@"\n'),
    ("secret-c-define", "generic_secret", HEX_SECRET, '#define API_KEY "@@"\n'),
    ("secret-compound-lower", "generic_secret", LONG_SECRET, "accesstoken: @@\n"),
    # Entropy rule: no secret-named key, but a secret word on the line
    ("entropy-kwarg", "high_entropy_string", ENTROPY_B64, 'client = Client(key="@@")\n'),
    (
        "entropy-hmac",
        "high_entropy_string",
        ENTROPY_HEX,
        'mac = hmac.new(bytes.fromhex("@@"), msg)\n',
    ),
    ("entropy-signature", "high_entropy_string", ENTROPY_HEX, 'expected_signature = "@@"\n'),
]


def _render(template: str, value: str) -> str:
    return template.replace("@@", value)


@pytest.mark.parametrize(
    ("kind", "secret", "template"),
    [pytest.param(k, s, t, id=i) for i, k, s, t in SECRET_CASES],
)
def test_secret_is_replaced_by_typed_placeholder(kind: str, secret: str, template: str) -> None:
    code = _render(template, secret)
    out = redact(code)
    assert secret not in out
    assert f"<SECRET:{kind}>" in out
    # Exactly the secret went; every other byte of the code is intact.
    assert out == _render(template, f"<SECRET:{kind}>")


@pytest.mark.parametrize(
    ("kind", "secret", "template"),
    [pytest.param(k, s, t, id=i) for i, k, s, t in SECRET_CASES],
)
def test_finding_spans_cover_exactly_the_secret(kind: str, secret: str, template: str) -> None:
    code = _render(template, secret)
    findings = find_secrets(code)
    assert [(f.kind, code[f.start : f.end]) for f in findings] == [(kind, secret)]
    assert contains_secret(code)


def test_every_kind_is_declared_and_exercised() -> None:
    assert len(set(KINDS)) == len(KINDS)
    assert {kind for _, kind, _, _ in SECRET_CASES} == set(KINDS)


# --- look-alikes that must come back byte-identical ------------------------------------------

SHA1 = "3f786850e387550fdab836ed7e6dc881de23001b"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA512_HEX = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce" + (
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)
INTEGRITY = "sha512-" + base64.b64encode(bytes(range(7, 71))).decode()
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
    "AAAABJRU5ErkJggg=="
)

LOOKALIKES: list[tuple[str, str]] = [
    # Identifiers and digests
    ("uuid-lower", 'user_id = "123e4567-e89b-12d3-a456-426614174000"\n'),
    ("uuid-upper", 'var id = Guid.Parse("6F9619FF-8B86-D011-B42D-00C04FC964FF");\n'),
    ("uuid-json", '{"requestId": "9b2f7c1e-4d3a-4b8e-9f0a-1c2d3e4f5a6b", "tokenCount": 12}'),
    ("git-sha-shell", f"git checkout {SHA1}\ngit log -1 {SHA1[:12]}\n"),
    ("git-sha-yaml", f"repos:\n  - repo: https://github.com/psf/black\n    rev: {SHA1}\n"),
    ("sha256-const", f'EXPECTED_SHA256 = "{SHA256}"\n'),
    ("sha512-hex", f"assert hashlib.sha512(b'').hexdigest() == '{SHA512_HEX}'\n"),
    (
        "trace-id",
        'span = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}\n',
    ),
    (
        "package-lock",
        '    "node_modules/@octokit/auth-token": {\n'
        '      "version": "2.4.5",\n'
        '      "resolved": "https://registry.npmjs.org/@octokit/auth-token/-/auth-token-2.4.5.tgz",\n'
        f'      "integrity": "{INTEGRITY}",\n'
        '      "dev": true\n'
        "    },\n",
    ),
    (
        "yarn-lock",
        '"@octokit/auth-token@^2.4.4":\n'
        '  version "2.4.5"\n'
        '  resolved "https://registry.yarnpkg.com/@octokit/auth-token/-/auth-token-2.4.5.tgz"\n'
        f"  integrity {INTEGRITY}\n",
    ),
    (
        "poetry-lock",
        '[[package]]\nname = "secretstorage"\nversion = "3.3.3"\nfiles = [\n'
        f'    {{file = "SecretStorage-3.3.3-py3-none-any.whl", hash = "sha256:{SHA256}"}},\n]\n',
    ),
    ("requirements-hash", f"keyring==24.3.0 \\\n    --hash=sha256:{SHA256}\n"),
    (
        "cargo-lock",
        f'[[package]]\nname = "secrecy"\nversion = "0.8.0"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n'
        f'checksum = "{SHA256}"\n',
    ),
    (
        "go-sum",
        "github.com/golang-jwt/jwt/v5 v5.2.1 h1:OuVbFODueb089Lh128TAcimifWaLhJwVflnrgM17wHk=\n",
    ),
    # Encoded test data and other high-entropy-looking values without a secret context
    ("png-fixture", f'PNG_FIXTURE = "{PNG_B64}"\n'),
    ("b64decode", 'data = base64.b64decode("SGVsbG8gd29ybGQ=")\n'),
    ("data-uri", f'<img src="data:image/png;base64,{PNG_B64}" alt="dot">\n'),
    (
        "hex-colours",
        ".btn {\n  color: #ff00aa;\n  background: #FFF;\n  --token-color-primary: #1a2b3c;\n}\n",
    ),
    ("versions", '{"name": "app", "version": "1.2.3-beta.4", "typescript": "^5.4.2"}\n'),
    (
        "long-identifiers",
        "const getUserAuthenticationTokenFromRequestHeaders2 = (req) => req.headers;\n"
        "max_new_tokens_per_request_limit = 512\n"
        "class PasswordResetTokenGeneratorV2(PasswordResetTokenGenerator): ...\n",
    ),
    # URLs, paths, regexes
    ("url-no-creds", 'API_URL = "https://api.example.com:8443/v1/tokens?limit=10&offset=20"\n'),
    (
        "url-user-only",
        "git clone https://alice@github.com/org/repo.git\ngit clone git@github.com:org/repo.git\n",
    ),
    ("paths", 'token_path = "/var/run/secrets/kubernetes.io/serviceaccount/token"\n'),
    (
        "yaml-file-ref",
        "db:\n  password_file: /run/secrets/db_password\n  secretName: db-credentials\n",
    ),
    (
        "regex-patterns",
        'GITHUB_TOKEN_RE = re.compile(r"gh[pousr]_[A-Za-z0-9]{36}")\n'
        'AWS_KEY_PATTERN = r"AKIA[0-9A-Z]{16}"\n'
        "const openAiKey = /^sk-[A-Za-z0-9]{48}$/;\n"
        'PEM_HEADER = "-----BEGIN RSA PRIVATE' + ' KEY-----"\n',
    ),
    (
        "pem-header-check",
        'if pem.startswith("-----BEGIN PRIVATE' + ' KEY-----"):\n    return load(pem)\n',
    ),
    # Placeholders and references
    ("changeme", 'password = "changeme"\n'),
    ("env-lookup", 'api_key = os.environ["API_KEY"]\nsecret = os.getenv("APP_SECRET", "")\n'),
    ("function-call", "token = get_token()\nclient = Client(token=token)\n"),
    ("yaml-interpolation", "database:\n  password: ${DB_PASSWORD}\n  token: '{{ vault_token }}'\n"),
    ("env-angle-placeholder", "API_KEY=<your-key-here>\nSECRET_KEY=\nDB_PASSWORD=\n"),
    ("docs-elided", 'OPENAI_API_KEY="sk-..."\nclient = OpenAI(api_key="sk-...")\n'),
    (
        "placeholder-words",
        'api_key = "YOUR_API_KEY"\nsecret = "your-secret-here"\npassword = "password"\n',
    ),
    ("masks", 'password = "********"\ntoken = "xxxxxxxxxxxxxxxxxxxxxxxx"\n'),
    (
        "masked-provider",
        "AWS_ACCESS_KEY_ID=AKIA" + "X" * 16 + "\nGITHUB_TOKEN=ghp_" + "x" * 36 + "\n",
    ),
    (
        "slack-doc-webhook",
        "SLACK_WEBHOOK=https://hooks.slack.com/services/T00000000/B00000000/" + "X" * 24 + "\n",
    ),
    ("url-default-creds", 'url = "postgres://postgres:postgres@localhost:5432/app"\n'),
    (
        "url-templates",
        'dsn = f"postgresql://{user}:{password}@{host}/{db}"\n'
        'uri = "mysql://%s:%s@%s/%s" % (user, pw, host, db)\n',
    ),
    ("none-values", "password = None\ntoken: null\nsecret = ''\n"),
    ("references", "password = settings.DB_PASSWORD\nconst token = process.env.GITHUB_TOKEN;\n"),
    # The word "token" (and friends) in ordinary code
    ("tokenizer", "tokens = tokenizer(text)\nmax_tokens = 256\n"),
    (
        "django-form",
        "password_field = forms.CharField()\n"
        "password = forms.CharField(widget=forms.PasswordInput)\n",
    ),
    (
        "special-tokens",
        'tokenizer.pad_token = "<pad>"\neos_token="</s>"\nmask_token = "[MASK]"\n'
        'special = {"bos_token": "<|im_start|>", "unk_token": "<unk>"}\n',
    ),
    ("token-type", 'token_type = "bearer"\nif token.type == "IDENTIFIER":\n    pass\n'),
    (
        "auth-config",
        'AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"\nauth_method = "oauth2"\n',
    ),
    ("auth-url", 'authorization_url = "https://accounts.google.com/o/oauth2/v2/auth"\n'),
    ("password-ui", 'PASSWORD_HELP = "Your password must contain at least 8 characters."\n'),
    ("html-input", '<input type="password" name="password" placeholder="Password">\n'),
    ("password-policy", "password_min_length: 12\npassword_hash_algorithm: argon2\n"),
    ("go-jwt-parse", "token, err := jwt.Parse(tokenString, keyFunc)\n"),
    ("ts-interface", "interface Login {\n  username: string;\n  password: string;\n}\n"),
    (
        "k8s-secret-ref",
        "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n"
        "        name: db\n        key: password\n",
    ),
    ("public-key", 'publicKey: "' + base64.b64encode(bytes(range(40, 105))).decode() + '",\n'),
    # Not secrets at all
    ("emails", 'ADMIN_EMAIL = "ops@example.com"\npassword_reset_email = "noreply@example.com"\n'),
    ("ips", 'DB_HOST = "10.0.12.7"\nauth_server = "192.168.1.10:8443"\n'),
    ("prose", "# Rotate the API token every 90 days; never commit a password or secret.\n"),
    (
        "prose-pass-verb",
        'raise ValueError("Please pass `return_dict=True` or `use_cache=False`.")\n',
    ),
    ("docker-user-ids", "docker run -u 1000:1000 -p 8080:80 app\nmkdir -p /srv/app\n"),
    ("c-define-version", '#define VERSION_STRING "4.2.1-rc3"\n#define BUILD_ID "Zq8xLm2Pw9Rt"\n'),
    (
        "k8s-plain-env",
        'env:\n  - name: LOG_LEVEL\n    value: debug\n  - name: WORKERS\n    value: "4"\n',
    ),
    ("parser-compare", 'if token == "IDENTIFIER" or token != "#bygroup":\n    emit(token)\n'),
    (
        "module-list",
        '_no_split_modules = ["Qwen2_5OmniToken2WavDiTModel", '
        '"Qwen2_5OmniToken2WavBigVGANModel"]\n',
    ),
    ("regex-value", "jsonnet_token = r'[^\\W\\d]\\w*'\ntoken = r\"[-!#$%&'*+.^_`|~0-9a-zA-Z]+\"\n"),
    ("enum-value", 'class SecurityScheme(Enum):\n    apiKey = "apiKey"\n    http = "http"\n'),
    (
        "public-key-token",
        '<assemblyIdentity name="Microsoft.VC90.CRT" publicKeyToken="1fc8b3b9a1e18e3b"/>\n',
    ),
    ("masked-doc", 'build_hf_headers(token="hf_***")  # explicit token\n'),
    ("encoding-name", 'def f(basic_auth_encoding: str = "latin-1"):\n    ...\n'),
    ("tuple-unpack", "host, port, access_key, secret_key = s3_connection\n"),
    ("abnf-comment", "#   token          = 1*tchar\n"),
    ("package-names", '{"auth0": "types-auth0-python", "passlib": "types-passlib"}\n'),
    ("charset", 'HEX_CHARS = "0123456789abcdefABCDEF"  # token must be hex\n'),
    ("html-anchor", '<a id="toc-HMAC_002dRIPEMD160" href="#HMAC_002dRIPEMD160">HMAC key</a>\n'),
]


@pytest.mark.parametrize("code", [pytest.param(c, id=i) for i, c in LOOKALIKES])
def test_lookalike_survives_unchanged(code: str) -> None:
    assert redact(code) == code
    assert find_secrets(code) == []
    assert not contains_secret(code)


# --- API shape --------------------------------------------------------------------------------


def test_finding_is_frozen_and_ordered() -> None:
    code = f'a = "{GH_PAT}"\nb = "{STRIPE_LIVE}"\nc = "{AWS_KEY_ID}"\n'
    findings = find_secrets(code)
    assert [f.kind for f in findings] == ["github_token", "stripe_key", "aws_access_key"]
    assert [f.start for f in findings] == sorted(f.start for f in findings)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))
    with pytest.raises(dataclasses.FrozenInstanceError):
        findings[0].kind = "other"  # type: ignore[misc]
    assert findings[0] == Finding(
        "github_token", code.index(GH_PAT), code.index(GH_PAT) + len(GH_PAT)
    )


def test_empty_and_clean_text() -> None:
    assert redact("") == ""
    assert find_secrets("") == []
    clean = "def add(a: int, b: int) -> int:\n    return a + b\n"
    assert redact(clean) == clean
    assert not contains_secret(clean)


# --- idempotence and placeholders ----------------------------------------------------------


def _all_secret_code() -> str:
    return "\n".join(_render(t, s) for _, _, s, t in SECRET_CASES)


def test_redact_is_idempotent_per_case() -> None:
    for case_id, _, secret, template in SECRET_CASES:
        once = redact(_render(template, secret))
        assert redact(once) == once, case_id
        assert find_secrets(once) == [], case_id


def test_redact_is_idempotent_on_mixed_corpus() -> None:
    corpus = _all_secret_code() + "\n" + "\n".join(code for _, code in LOOKALIKES)
    once = redact(corpus)
    assert redact(once) == once
    for _, _, secret, _ in SECRET_CASES:
        assert secret not in once
    for _, code in LOOKALIKES:
        assert code in once


def test_placeholders_are_never_detected() -> None:
    text = "\n".join(
        [
            'password = "<SECRET:password>"',
            "DATABASE_URL=postgres://app:<SECRET:url_password>@db:5432/app",
            "aws_secret_access_key = <SECRET:aws_secret_key>",
            'headers = {"Authorization": "Bearer <SECRET:jwt>"}',
            "token: <SECRET:github_token>",
            "<SECRET:private_key>",
            f'signing_key = "<SECRET:generic_secret>" + "{fake(8, seed="tail")}"',
        ]
    )
    assert find_secrets(text) == []
    assert redact(text) == text


def test_placeholder_keyword_does_not_widen_entropy_rule() -> None:
    # After the first pass the line holds "<SECRET:...>"; that text must not act as a
    # secret keyword for the high-entropy token next to it.
    noise = fake(32, B64, seed="noise")
    code = f'pair = ("{AWS_KEY_ID}", "{noise}")\n'
    once = redact(code)
    assert once == f'pair = ("<SECRET:aws_access_key>", "{noise}")\n'
    assert redact(once) == once


# --- specific behaviours ---------------------------------------------------------------------


def test_multiline_private_key_is_replaced_whole() -> None:
    template = 'import jwt\n\nPRIVATE_KEY = """@@\n"""\n\ntoken = jwt.encode(claims, PRIVATE_KEY)\n'
    out = redact(_render(template, RSA_KEY))
    assert out == _render(template, "<SECRET:private_key>")
    assert out.count("\n") == template.count("\n")
    assert "BEGIN" not in out and "END RSA" not in out
    for line in RSA_KEY.splitlines()[1:-1]:
        assert line not in out


def test_private_key_built_by_string_concatenation() -> None:
    lines = RSA_KEY.splitlines()
    code = (
        "const pem =\n"
        + " +\n".join(f'  "{line}\\n"' for line in lines)
        + ";\nexport default pem;\n"
    )
    out = redact(code)
    assert out == 'const pem =\n  "<SECRET:private_key>\\n";\nexport default pem;\n'


def test_truncated_private_key_in_an_editor_prefix() -> None:
    # A completion prefix can end in the middle of a key block, before its END line.
    lines = RSA_KEY.splitlines()
    prefix = 'KEY = """' + "\n".join(lines[:5])
    out = redact(prefix)
    assert out == 'KEY = """<SECRET:private_key>'
    for line in lines[1:5]:
        assert line not in out


def test_two_private_keys_are_two_findings() -> None:
    code = f"{RSA_KEY}\n\n# second\n{OPENSSH_KEY}\n"
    findings = find_secrets(code)
    assert [f.kind for f in findings] == ["private_key", "private_key"]
    assert redact(code) == "<SECRET:private_key>\n\n# second\n<SECRET:private_key>\n"


def test_multiple_secrets_on_one_line() -> None:
    line = f"AWS_ACCESS_KEY_ID={AWS_KEY_ID} AWS_SECRET_ACCESS_KEY={AWS_SECRET} aws s3 ls\n"
    assert redact(line) == (
        "AWS_ACCESS_KEY_ID=<SECRET:aws_access_key> "
        "AWS_SECRET_ACCESS_KEY=<SECRET:aws_secret_key> aws s3 ls\n"
    )
    js = f"const cfg = {{ stripe: '{STRIPE_LIVE}', gh: '{GH_PAT}', password: '{PASSWORD}' }};"
    assert redact(js) == (
        "const cfg = { stripe: '<SECRET:stripe_key>', gh: '<SECRET:github_token>', "
        "password: '<SECRET:password>' };"
    )
    twilio = f'client = Client("{TWILIO_SID}", "{TWILIO_KEY}")'
    assert redact(twilio) == 'client = Client("<SECRET:twilio_key>", "<SECRET:twilio_key>")'


def test_url_password_keeps_user_host_and_path() -> None:
    code = f'DSN = "postgresql://app_user:{URL_PW}@db.prod.example.com:5432/orders?sslmode=require"'
    out = redact(code)
    assert out == (
        'DSN = "postgresql://app_user:<SECRET:url_password>@db.prod.example.com:5432/orders'
        '?sslmode=require"'
    )
    (finding,) = find_secrets(code)
    assert code[finding.start : finding.end] == URL_PW


def test_token_in_url_userinfo_is_typed_by_provider() -> None:
    code = f"https://{GH_PAT}:x-oauth-basic@github.com/org/repo.git"
    out = redact(code)
    assert GH_PAT not in out
    assert out.startswith("https://<SECRET:github_token>:")
    assert out.endswith("@github.com/org/repo.git")


def test_keyword_rule_replaces_only_the_value() -> None:
    code = f"    'PASSWORD': '{PASSWORD}',  # production\n"
    assert redact(code) == "    'PASSWORD': '<SECRET:password>',  # production\n"


def test_provider_kind_wins_over_keyword_kind() -> None:
    code = f'api_key = "{STRIPE_LIVE}"\npassword = "{GH_PAT}"\n'
    assert redact(code) == 'api_key = "<SECRET:stripe_key>"\npassword = "<SECRET:github_token>"\n'


def test_bearer_prefix_kept_when_jwt_inside_a_secret_value() -> None:
    code = f'auth_token = "Bearer {JWT}"\n'
    assert redact(code) == 'auth_token = "Bearer <SECRET:jwt>"\n'


def test_placeholder_policy_boundaries() -> None:
    # Plain words are placeholders; anything with a digit or symbol is a password.
    assert redact('password = "changeme"') == 'password = "changeme"'
    assert redact('password = "changeme1"') == 'password = "<SECRET:password>"'
    assert redact('password = "abc12"') == 'password = "abc12"'  # shorter than six
    assert redact('secret = "qWeRtYuIoPaSdFgHjKlZ"') == 'secret = "<SECRET:generic_secret>"'
    assert redact("DB_PASSWORD=postgres") == "DB_PASSWORD=postgres"


def test_entropy_rule_needs_a_secret_word_on_the_line() -> None:
    token = fake(40, B64, seed="ctx")
    assert redact(f'blob = "{token}"') == f'blob = "{token}"'
    assert (
        redact(f'blob = "{token}"  # signing key')
        == 'blob = "<SECRET:high_entropy_string>"  # signing key'
    )
    assert redact(f'cache_key = "{token}"') == f'cache_key = "{token}"'


def test_non_ascii_text_is_preserved() -> None:
    template = '# Пароль für die Datenbank — ünïcödé ✓ İstanbul\nDB_PASSWORD = "@@"\nname = "Zoë"\n'
    code = _render(template, PASSWORD)
    assert redact(code) == _render(template, "<SECRET:password>")
    (finding,) = find_secrets(code)
    assert code[finding.start : finding.end] == PASSWORD


# --- scale --------------------------------------------------------------------------------


def _big_source(target: int) -> tuple[str, int]:
    """About ``target`` characters of mixed source, and how many secrets it holds."""
    chunks: list[str] = []
    planted = 0
    size = 0
    i = 0
    while size < target:
        _, _, secret, template = SECRET_CASES[i % len(SECRET_CASES)]
        _, lookalike = LOOKALIKES[i % len(LOOKALIKES)]
        filler = (
            f"def handler_{i}(request, tokens, max_tokens=256):\n"
            f"    '''Process batch {i} of the queue.'''\n"
            f"    total = sum(len(t) for t in tokens[:max_tokens])\n"
            f"    return {{'ok': True, 'total': total, 'id': {i}}}\n\n"
        )
        chunk = filler + lookalike + _render(template, secret) + "\n"
        chunks.append(chunk)
        planted += 1
        size += len(chunk)
        i += 1
    return "".join(chunks), planted


def test_large_source_is_redacted_completely_and_quickly() -> None:
    source, planted = _big_source(200_000)
    assert len(source) >= 200_000
    start = time.perf_counter()
    out = redact(source)
    elapsed = time.perf_counter() - start
    assert out.count("<SECRET:") == planted
    assert elapsed < 1.0


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("A" * 200_000, id="one-long-word"),
        pytest.param(B64[:64] * 3_200, id="long-base64-line"),
        pytest.param("a-" * 100_000, id="kebab-run"),
        pytest.param('"' * 200_000, id="quotes"),
        pytest.param("password=" * 22_000, id="repeated-keyword"),
        pytest.param("secret_token_key_" * 12_000, id="long-keyword-identifier"),
        pytest.param(
            ("-----BEGIN RSA PRIVATE" + " KEY-----\n" + "QUJD" * 16 + "\n") * 2_500,
            id="unterminated-pem",
        ),
        pytest.param("postgres://u:" * 15_000, id="unterminated-url"),
        pytest.param(("x = '" + "ab" * 50) * 2_000, id="unterminated-strings"),
        pytest.param("glpat-" * 33_000, id="repeated-provider-prefix"),
        pytest.param("eyJ" + "eyJa." * 40_000, id="jwt-like-run"),
        pytest.param("key=" * 50_000, id="repeated-name-value"),
        pytest.param("<a" * 100_000, id="unclosed-tags"),
        pytest.param("Bearer " * 28_000, id="repeated-bearer"),
        pytest.param(
            "keys = ["
            + ", ".join(f'"{fake(30, seed=str(i))}"' for i in range(6_000))
            + "]  # signing key",
            id="many-tokens-one-line",
        ),
    ],
)
def test_adversarial_inputs_stay_linear(text: str) -> None:
    # A super-linear scan takes minutes on inputs this size; the bound only catches that.
    start = time.perf_counter()
    out = redact(text)
    elapsed = time.perf_counter() - start
    assert isinstance(out, str) and len(out) > 0
    assert redact(out) == out
    assert elapsed < 2.0


def test_random_mixtures_are_idempotent() -> None:
    rng = random.Random(20240501)
    pieces = [_render(t, s) for _, _, s, t in SECRET_CASES] + [c for _, c in LOOKALIKES]
    glue = ["", " ", "\n", '"', "'", "=", ":", ",", ";", "&", "/", "-", "x9", "<SECRET:jwt>"]
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 4)):
            piece = rng.choice(pieces)
            if rng.random() < 0.3:
                a = rng.randrange(len(piece))
                piece = piece[a : rng.randint(a, len(piece))]
            parts.append(piece + rng.choice(glue))
        text = "".join(parts)
        once = redact(text)
        assert redact(once) == once, text
        assert find_secrets(once) == [], text
