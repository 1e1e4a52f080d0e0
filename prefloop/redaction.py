"""Secret detection and redaction for code text.

Every text that comes from a developer's editor (prefixes, suffixes, suggestions, edits)
passes through :func:`redact` before it is written to the database, a log line or a
training file. Each detected secret is replaced by a typed placeholder such as
``<SECRET:aws_access_key>``; the code around it is left byte-for-byte intact.

Detection combines three families of rules:

* **Provider rules** recognise the published shapes of credentials (AWS, GitHub, GitLab,
  Slack, Stripe, Google, OpenAI, Anthropic, Hugging Face, npm, PyPI, Twilio, SendGrid,
  Mailgun, Discord, Telegram, Shopify, DigitalOcean, Databricks, Vault, Grafana, age,
  JWTs, PEM private key blocks, including blocks cut off before their END line) and
  structural credentials (passwords inside URLs, Azure connection-string keys,
  ``Basic``/``Bearer`` headers, ``curl -u user:password``, ``mysql -p...``).
* **Keyword rule**: an assignment, dict/JSON/YAML entry, keyword argument, env or INI
  line, ``KEY=value`` argument, ``#define``, SQL ``PASSWORD '...'``, Kubernetes/ECS
  ``name``/``value`` pair or XML element whose key names a secret (``password``,
  ``DB_PASSWORD``, ``PGPASSWORD``, ``stripeSecretKey``, ``client_secret``,
  ``auth_token`` ...) and whose value is a literal. Only the value is replaced, typed
  ``password`` or ``generic_secret``.
* **Entropy rule**: a quoted literal, or a bare ``=``-assigned token, of at least 20
  base64/hex characters with high Shannon entropy that does not read like an
  identifier, on a line that also names a secret and does not talk about hashes.

When rules overlap, a provider's kind wins over the keyword rule's, which wins over the
entropy rule's; ``password = "ghp_..."`` becomes ``password = "<SECRET:github_token>"``.

Borderline cases are decided as follows:

* Values that are not literals (``os.environ["API_KEY"]``, ``get_token()``,
  ``settings.SECRET``), template references (``${DB_PASSWORD}``, ``{{ vault_pw }}``,
  ``%(password)s``, ``{password}``), bracketed placeholders (``<your-key-here>``,
  ``[MASK]``), elided values (``sk-...``), masks (``xxxxxxxx``, ``********``), regular
  expressions, values containing whitespace (prose, UI strings) and values shorter than
  six characters are kept.
* A value made only of letters and word separators that reads like words or an
  identifier (``changeme``, ``password``, ``your-api-key-here``, ``GITHUB_TOKEN``) is
  taken as a placeholder or a name and kept; so ``password = "changeme"`` survives while
  ``password = "changeme1"`` is redacted. Several separated words with numbers
  (``latin-1``, ``types-auth0-python``) are names too. The same applies to passwords in
  URLs, so ``postgres://postgres:postgres@localhost`` survives.
* Comparisons (``x == "..."``) count only for password names: ``token == "IDENT"`` is
  parser code, ``password == "..."`` is a hard-coded credential.
* Keys where a word after the secret word describes metadata rather than the secret
  (``token_type``, ``password_field``, ``secret_name``, ``token_url``,
  ``password_hash``, ``private_key_id``), public keys (``publicKey``,
  ``publicKeyToken``), flags (``is_secret``, ``use_auth``) and tokenizer vocabulary
  (``pad_token``, ``eos_token``) are not secret-named.
* Emails, IP addresses, UUIDs, commit SHAs and content digests (lockfile integrity
  hashes, ``--hash=sha256:...``) are not secrets and are kept; a UUID or hex string is
  only redacted when it is the literal value of a secret-named key.

Placeholders are never detected again, which makes :func:`redact` idempotent.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import string
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["KINDS", "PLACEHOLDER_RE", "Finding", "contains_secret", "find_secrets", "redact"]

KINDS: tuple[str, ...] = (
    "private_key",
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "gitlab_token",
    "slack_token",
    "slack_webhook",
    "stripe_key",
    "google_api_key",
    "openai_key",
    "anthropic_key",
    "huggingface_token",
    "npm_token",
    "pypi_token",
    "twilio_key",
    "sendgrid_key",
    "mailgun_key",
    "discord_token",
    "discord_webhook",
    "telegram_bot_token",
    "jwt",
    "shopify_token",
    "digitalocean_token",
    "databricks_token",
    "vault_token",
    "grafana_token",
    "age_secret_key",
    "url_password",
    "azure_storage_key",
    "azure_shared_access_key",
    "basic_auth",
    "bearer_token",
    "password",
    "generic_secret",
    "high_entropy_string",
)

PLACEHOLDER_RE: re.Pattern[str] = re.compile(r"<SECRET:[a-z0-9_]+>")
"""Matches the placeholders :func:`redact` writes."""

_MASK = "\x00"


@dataclass(frozen=True, slots=True)
class Finding:
    """A detected secret: its kind and its ``[start, end)`` span in the scanned text."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Candidate:
    tier: int
    rank: int
    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A regex rule.

    ``group`` is the part replaced; the regex only runs when one of the lowercase
    ``hints`` occurs in the text. ``left`` lists characters that may not directly precede
    the match (checked here rather than by a leading look-behind, which would keep the
    regex engine from skipping ahead to the literal prefix), unless the text before the
    match ends with ``left_allow``.
    """

    kind: str
    regex: re.Pattern[str]
    hints: tuple[str, ...]
    group: int | str = 0
    check: Callable[[str], bool] | None = None
    match_check: Callable[[re.Match[str]], bool] | None = None
    left: frozenset[str] = frozenset()
    left_allow: str = ""


# Precedence when spans overlap: a lower tier wins, then the longer span, then the rule
# listed first.
_TIER_BLOCK = 0
_TIER_PROVIDER = 1
_TIER_STRUCTURAL = 2
_TIER_KEYWORD = 3
_TIER_ENTROPY = 4


# ---------------------------------------------------------------------------------------
# Shared value heuristics
# ---------------------------------------------------------------------------------------

_REPEAT_RUN_RE = re.compile(r"(.)\1{5,}")
_CAMEL_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SEGMENT_SPLIT_RE = re.compile(r"[-_.:/@+ ]+")


def _is_sequential(token: str) -> bool:
    """Runs such as ``0123456789abcdef`` (character sets, keyboard demos)."""
    steps = sum(1 for a, b in pairwise(token) if ord(b) - ord(a) == 1)
    return steps * 2 > len(token)


def _not_placeholder_token(token: str) -> bool:
    """False for masks and demo values such as ``ghp_xxxxxxxx...`` or ``T00000000``."""
    return (
        _REPEAT_RUN_RE.search(token) is None and len(set(token)) >= 6 and not _is_sequential(token)
    )


def _has_digit(s: str) -> bool:
    return any(c.isdigit() for c in s)


def _has_upper(s: str) -> bool:
    return any(c.isupper() for c in s)


def _has_lower(s: str) -> bool:
    return any(c.islower() for c in s)


def _mixed_alnum(token: str) -> bool:
    """Random-looking: placeholder-free and at least two of upper/lower/digit."""
    classes = _has_digit(token) + _has_upper(token) + _has_lower(token)
    return classes >= 2 and _not_placeholder_token(token)


def _is_wordy(segment: str) -> bool:
    """True for letter runs that read like words: ``changeme``, ``SuperSecretPassword``.

    Random mixed-case letters (``qWeRtYuIoP``) split into many one- or two-letter
    camel-case pieces and are not wordy.
    """
    pieces = _CAMEL_WORD_RE.findall(segment)
    if not pieces:
        return False
    if len(pieces) == 1:
        return True
    singles = sum(1 for p in pieces if len(p) == 1)
    return singles <= 1 and len(segment) / len(pieces) >= 3.0


_WORD_NUMBER_RE = re.compile(r"([A-Za-z]+)[0-9]{0,3}")


def _is_name_like(value: str) -> bool:
    """Reads like words or an identifier rather than a random secret.

    Either letters and separators only (``changeme``, ``your-api-key-here``), or several
    separated words where numbers stand alone or trail a word (``latin-1``,
    ``types-auth0-python``). A single run mixing letters and digits (``hunter2``) is not
    name-like.
    """
    segments = [s for s in _SEGMENT_SPLIT_RE.split(value) if s]
    if not segments:
        return False
    if all(s.isalpha() and _is_wordy(s) for s in segments):
        return True
    if len(segments) < 2 or not any(len(s) >= 3 and s.isalpha() for s in segments):
        return False
    for segment in segments:
        if segment.isdigit():
            continue
        m = _WORD_NUMBER_RE.fullmatch(segment)
        if m is None or not _is_wordy(m.group(1)):
            return False
    return True


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


def _shannon_entropy(s: str) -> float:
    n = len(s)
    return -sum((c / n) * math.log2(c / n) for c in Counter(s).values())


# ---------------------------------------------------------------------------------------
# Provider and structural rules
# ---------------------------------------------------------------------------------------

_PEM_BEGIN = r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_PEM_END = r"-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_PEM_FULL_RE = re.compile(_PEM_BEGIN + r"(?:(?!-----BEGIN)[\s\S]){0,20000}?" + _PEM_END)
# A block cut off before its END line (an editor prefix often ends inside a key).
_PEM_TRUNCATED_RE = re.compile(
    _PEM_BEGIN
    + r"""(?:(?:\\[nr]|[\s"'+,])+(?:[A-Za-z0-9+/=]{4,}+|[A-Z][A-Za-z-]{0,40}:[^\n\\]{0,200}+))+"""
)
_PEM_HEADER_RE = re.compile(r"-----(?:BEGIN|END)[^\n-]*-----")
_PEM_NOISE_RE = re.compile(r"""\\[nrt]|[\s"'+,`]""")


def _pem_body_ok(block: str) -> bool:
    """The text between the PEM header lines is (mostly) base64, not surrounding code."""
    body = _PEM_NOISE_RE.sub("", _PEM_HEADER_RE.sub("", block))
    b64 = sum(1 for c in body if c.isascii() and (c.isalnum() or c in "+/="))
    return b64 >= 32 and (len(body) - b64) <= max(8, b64 // 10)


def _jwt_ok(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return False
    return decoded.lstrip().startswith(b"{")


def _basic_auth_ok(token: str) -> bool:
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    _user, sep, password = text.partition(":")
    return bool(sep and password) and text.isprintable()


def _discord_ok(token: str) -> bool:
    first = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    except (binascii.Error, ValueError):
        return False
    return decoded.isdigit() and _not_placeholder_token(token)


def _bearer_ok(token: str) -> bool:
    return (
        _has_digit(token)
        and any(c.isalpha() for c in token)
        and _not_placeholder_token(token)
        and "..." not in token
    )


def _upper_lower(token: str) -> bool:
    return _has_upper(token) and _has_lower(token) and _not_placeholder_token(token)


# Characters that may not directly precede a token (it would be part of a longer word).
_WORD_LEFT = frozenset(string.ascii_letters + string.digits + "_" + _MASK)
_DASH_LEFT = _WORD_LEFT | {"-"}
_DOT_LEFT = _DASH_LEFT | {"."}


def _aws_secret_context(m: re.Match[str]) -> bool:
    """``secret_access_key`` anywhere, or ``secret_key`` right after ``aws``."""
    if m.group("access") is not None:
        return True
    before = m.string[max(0, m.start() - 4) : m.start()].lower().rstrip("_-.")
    return before.endswith("aws")


_PROVIDER_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "aws_access_key",
        re.compile(r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9_\x00])"),
        ("akia", "asia", "abia", "acca"),
        check=_not_placeholder_token,
        left=_WORD_LEFT,
    ),
    _Pattern(
        "aws_secret_key",
        re.compile(
            r"(?:secret|Secret|SECRET)[_\-.]?"
            r"(?P<access>(?:access|Access|ACCESS)[_\-.]?)?(?:key|Key|KEY)"
            r"""["'`\]]{0,2}[ \t]*(?:=>|:=|=|:|,)[ \t]*["'`]?"""
            r"(?P<s>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=\x00])"
        ),
        ("secret",),
        "s",
        _mixed_alnum,
        match_check=_aws_secret_context,
    ),
    _Pattern(
        "github_token",
        re.compile(
            r"(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{50,255})(?![A-Za-z0-9_\x00])"
        ),
        ("gh", "github_pat_"),
        check=_mixed_alnum,
        left=_WORD_LEFT,
    ),
    _Pattern(
        "gitlab_token",
        re.compile(r"gl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_\-]{20,255}(?![A-Za-z0-9_\-\x00])"),
        ("gl",),
        check=_mixed_alnum,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "slack_webhook",
        re.compile(
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/"
            r"(?P<s>[A-Za-z0-9_\-]{1,64}(?:/[A-Za-z0-9_\-]{1,64}){1,4})"
        ),
        ("hooks.slack.com",),
        "s",
        lambda s: len(s) >= 20 and _not_placeholder_token(s),
    ),
    _Pattern(
        "slack_token",
        re.compile(
            r"(?:xox[baprse]-[0-9A-Za-z]{6,64}(?:-[0-9A-Za-z]{4,64}){1,5}"
            r"|xapp-[0-9]-[0-9A-Za-z]{6,64}(?:-[0-9A-Za-z]{4,128}){1,4})(?![A-Za-z0-9_\-\x00])"
        ),
        ("xox", "xapp-"),
        check=lambda s: _has_digit(s) and _not_placeholder_token(s),
        left=_DASH_LEFT,
    ),
    _Pattern(
        "stripe_key",
        re.compile(r"[rs]k_(?:live|test)_[0-9A-Za-z]{16,247}(?![A-Za-z0-9_\x00])"),
        ("k_live_", "k_test_"),
        check=_mixed_alnum,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "google_api_key",
        re.compile(r"AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-\x00])"),
        ("aiza",),
        check=_mixed_alnum,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "anthropic_key",
        re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,300}(?![A-Za-z0-9_\-\x00])"),
        ("sk-ant-",),
        check=_mixed_alnum,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "openai_key",
        re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,300}(?![A-Za-z0-9_\-\x00])"),
        ("sk-",),
        check=lambda s: _has_digit(s) and _upper_lower(s),
        left=_DASH_LEFT,
    ),
    _Pattern(
        "huggingface_token",
        re.compile(r"hf_[A-Za-z0-9]{30,40}(?![A-Za-z0-9_\x00])"),
        ("hf_",),
        check=_upper_lower,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "npm_token",
        re.compile(r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_\x00])"),
        ("npm_",),
        check=_mixed_alnum,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "pypi_token",
        re.compile(r"pypi-Ag[A-Za-z0-9_\-]{50,300}(?![A-Za-z0-9_\-\x00])"),
        ("pypi-ag",),
        check=_not_placeholder_token,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "twilio_key",
        re.compile(r"(?:SK|AC)[0-9a-f]{32}(?![A-Za-z0-9_\x00])"),
        ("sk", "ac"),
        check=_not_placeholder_token,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "sendgrid_key",
        re.compile(r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{30,64}(?![A-Za-z0-9_\-\x00])"),
        ("sg.",),
        check=_mixed_alnum,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "mailgun_key",
        re.compile(r"key-[0-9a-zA-Z]{32}(?![A-Za-z0-9_\x00])"),
        ("key-",),
        check=_mixed_alnum,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "discord_webhook",
        re.compile(
            r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/"
            r"(?P<s>[0-9]{5,30}/[A-Za-z0-9_\-]{40,120})"
        ),
        ("discord",),
        "s",
        _not_placeholder_token,
    ),
    _Pattern(
        "discord_token",
        re.compile(
            r"[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,40}"
            r"(?![A-Za-z0-9_\-.\x00])"
        ),
        (".",),
        check=_discord_ok,
        left=_DOT_LEFT,
    ),
    _Pattern(
        "telegram_bot_token",
        re.compile(r"[0-9]{8,10}:AA[A-Za-z0-9_\-]{33}(?![A-Za-z0-9_\-\x00])"),
        (":aa",),
        check=_not_placeholder_token,
        left=_WORD_LEFT | {":"},
        left_allow="bot",
    ),
    _Pattern(
        "shopify_token",
        re.compile(r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9_\x00])"),
        ("shp",),
        check=_not_placeholder_token,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "digitalocean_token",
        re.compile(r"do[opr]_v1_[a-f0-9]{64}(?![A-Za-z0-9_\x00])"),
        ("_v1_",),
        check=_not_placeholder_token,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "databricks_token",
        re.compile(r"dapi[a-f0-9]{32}(?:-[0-9])?(?![A-Za-z0-9_\x00])"),
        ("dapi",),
        check=_not_placeholder_token,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "vault_token",
        re.compile(r"hv[sbr]\.[A-Za-z0-9_\-]{24,255}(?![A-Za-z0-9_\-\x00])"),
        ("hvs.", "hvb.", "hvr."),
        check=_mixed_alnum,
        left=_DOT_LEFT,
    ),
    _Pattern(
        "grafana_token",
        re.compile(
            r"(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,400}={0,2})(?![A-Za-z0-9_\x00])"
        ),
        ("glsa_", "glc_"),
        check=_mixed_alnum,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "age_secret_key",
        re.compile(r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
        ("age-secret-key-1",),
        check=_not_placeholder_token,
        left=_DASH_LEFT,
    ),
    _Pattern(
        "jwt",
        re.compile(
            r"eyJ[A-Za-z0-9_\-]{5,1000}\.eyJ[A-Za-z0-9_\-]{5,4000}\.[A-Za-z0-9_\-]{8,1000}"
            r"(?![A-Za-z0-9_\-.\x00])"
        ),
        ("eyj",),
        check=_jwt_ok,
        left=_DOT_LEFT,
    ),
)

_BLOCK_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern("private_key", _PEM_FULL_RE, ("private key",), check=_pem_body_ok),
    _Pattern("private_key", _PEM_TRUNCATED_RE, ("private key",), check=_pem_body_ok),
)


def _url_password_ok(password: str) -> bool:
    if any(c in password for c in "{}$<>*\x00") or "..." in password:
        return False
    if re.search(r"%[sd(]", password):
        return False
    if len(password) >= 3 and len(set(password)) <= 2:
        return False
    return not _is_name_like(password)


def _cli_password_ok(password: str) -> bool:
    return not password.isdigit() and _url_password_ok(password) and len(password) >= 4


def _mysql_line(m: re.Match[str]) -> bool:
    text = m.string
    line_start = text.rfind("\n", 0, m.start()) + 1
    line = text[line_start : m.start()].lower()
    return "mysql" in line or "mariadb" in line


_STRUCTURAL_PATTERNS: tuple[_Pattern, ...] = (
    _Pattern(
        "password",
        re.compile(
            r"""(?:-u(?<=\s-u)|--user(?<=\s--user))(?:[ \t]+|=)["']?[^\s:'"$]{1,128}:"""
            r"""(?P<s>[^\s'"]{1,256})"""
        ),
        ("-u", "--user"),
        "s",
        _cli_password_ok,
    ),
    _Pattern(
        "password",
        re.compile(r"""-p(?<=\s-p)(?P<s>[^\s'"\-][^\s'"]{3,255})"""),
        ("mysql", "mariadb"),
        "s",
        _cli_password_ok,
        match_check=_mysql_line,
    ),
    _Pattern(
        "url_password",
        re.compile(
            r"""://(?<=[A-Za-z0-9+.\-]://)[^\s:/?#@'"`<>]{0,128}:"""
            r"""(?P<s>[^\s/?#@'"`,]{1,256})@(?=[A-Za-z0-9\[])"""
        ),
        ("://",),
        "s",
        _url_password_ok,
    ),
    _Pattern(
        "azure_storage_key",
        re.compile(r"(?i:AccountKey)[ \t]*=[ \t]*(?P<s>[A-Za-z0-9+/]{40,100}={0,2})"),
        ("accountkey",),
        "s",
        _mixed_alnum,
    ),
    _Pattern(
        "azure_shared_access_key",
        re.compile(r"(?i:SharedAccessKey)[ \t]*=[ \t]*(?P<s>[A-Za-z0-9+/]{30,100}={0,2})"),
        ("sharedaccesskey",),
        "s",
        _mixed_alnum,
    ),
    _Pattern(
        "basic_auth",
        re.compile(
            r"(?:Basic|basic|BASIC)[ \t]+(?P<s>[A-Za-z0-9+/]{6,512}={0,2})(?![A-Za-z0-9+/=\x00])"
        ),
        ("basic",),
        "s",
        _basic_auth_ok,
        left=_WORD_LEFT,
    ),
    _Pattern(
        "bearer_token",
        re.compile(
            r"(?:Bearer|bearer|BEARER)[ \t]+(?P<s>[A-Za-z0-9\-._~+/]{16,2048}={0,2})"
            r"(?![A-Za-z0-9\-._~+/=\x00])"
        ),
        ("bearer",),
        "s",
        _bearer_ok,
        left=_WORD_LEFT,
    ),
)


# ---------------------------------------------------------------------------------------
# Keyword rule
# ---------------------------------------------------------------------------------------

_PASSWORD_WORDS = frozenset({"password", "passwd", "passwort", "pwd", "passphrase", "pass"})
_SECRET_WORDS = _words(
    "secret token apikey apitoken accesskey secretkey privatekey authtoken credential "
    "credentials creds auth"
)
# Words that turn a following "key" into a secret: api_key, accessKey, SIGNING_KEY ...
_KEY_QUALIFIERS = _words(
    "api access secret private signing encryption master auth app account license session "
    "shared client webhook consumer hmac"
)
# For the entropy rule a bare "key" is secret-ish too, except for these kinds of key.
_NON_SECRET_KEY_QUALIFIERS = _words(
    "public pub publishable cache primary foreign sort partition dict map lookup "
    "idempotency row object bucket group unique composite index"
)
_ENTROPY_EXTRA_WORDS = frozenset({"bearer", "authorization", "signature", "hmac"})
# Words after the secret word that make the key describe metadata, not the secret.
_NON_SECRET_SUFFIXES = _words(
    "type types kind name names field fields label labels placeholder hint help description "
    "desc message msg error errors prompt title caption text url urls uri uris endpoint "
    "endpoints host hostname domain server port path paths file files filename dir "
    "directory folder location env environ var vars variable length len size count num "
    "number min max limit limits budget usage ttl timeout expiry expires expiration expire "
    "lifetime age duration interval id ids index idx header headers param params parameter "
    "query prefix suffix format pattern regex re rule rules policy policies validator "
    "validators validation mode method methods scheme provider providers backend backends "
    "strategy class cls enabled enable disabled required valid invalid ref refs reference "
    "arn version versions manager store storage cache hash hashes hashed digest checksum "
    "sha md user username login email account owner scope scopes audience issuer algorithm "
    "alg algo column col table attr attribute property prop option options widget input "
    "form button link icon style color strength score rounds iterations reset retry retries "
    "attempts counter state status flag event events callback handler source src schema "
    "spec template encoding charset"
)
_BOOLEAN_PREFIXES = _words(
    "is has use uses should show enable enabled disable disabled allow can needs no"
)
# ``pad_token = "<pad>"`` and friends are tokenizer vocabulary, not credentials.
_TOKENIZER_QUALIFIERS = _words(
    "pad padding eos bos unk unknown sep cls mask special start end stop begin eot eom next "
    "prev previous first last current cur sentinel im fim middle image audio video vocab "
    "decoder encoder prefix suffix newline bpe added subword word char byte"
)


# All-caps or all-lowercase compounds: PGPASSWORD, accesstoken, clientsecret.
_PASSWORD_SUFFIXES = ("password", "passwd")
_SECRET_SUFFIXES = ("secret", "token", "apikey", "secretkey", "privatekey", "accesskey")
_PUBLIC_WORDS = frozenset({"public", "pub", "publishable"})


def _is_secret_key_word(word: str, prev: str, loose: bool) -> bool:
    if word == "key":
        return prev in _KEY_QUALIFIERS or (loose and prev not in _NON_SECRET_KEY_QUALIFIERS)
    return loose and word in _ENTROPY_EXTRA_WORDS


def _secret_key_kind(key: str, *, loose: bool = False) -> str | None:
    """The kind for a secret-named key (``password`` or ``generic_secret``), else None.

    With ``loose`` a plain ``key`` (``stripe_key``, ``"key"``) and header words such as
    ``Bearer`` also count; the entropy rule uses that wider net.
    """
    words = [w.lower() for w in _CAMEL_WORD_RE.findall(key)]
    if not words or (len(words) > 1 and words[0] in _BOOLEAN_PREFIXES):
        return None
    if any(w in _PUBLIC_WORDS for w in words):
        return None
    last = -1
    is_password = False
    for i, word in enumerate(words):
        prev = words[i - 1] if i else ""
        if word in _PASSWORD_WORDS or word.endswith(_PASSWORD_SUFFIXES):
            if word == "pass" and i != len(words) - 1:
                continue
            last, is_password = i, True
        elif word in _SECRET_WORDS or word.endswith(_SECRET_SUFFIXES):
            if word == "token" and prev in _TOKENIZER_QUALIFIERS:
                continue
            last = i
        elif _is_secret_key_word(word, prev, loose):
            last = i
    tail = [w for w in words[last + 1 :] if not w.isdigit()]
    if last < 0 or any(w in _NON_SECRET_SUFFIXES for w in tail):
        return None
    if loose and len(tail) > 1:
        # Weak context: the secret word must end the name (``expected_signature``).
        return None
    return "password" if is_password else "generic_secret"


_KEYWORD_RE = re.compile(
    r"""
    -{0,2}
    (?P<key>[A-Za-z_$][\w$.\-]*+)
    (?P<close>["'`]?\]?)
    (?P<ann>
        [ \t]*:[ \t]*[A-Za-z_][\w.\[\], |]{0,60}?(?=[ \t]+=[ \t]+[^\s=>])
      | [ \t]+[A-Za-z_][\w.\[\]]{0,40}(?=[ \t]+=[ \t]+[^\s=>])
    )?
    (?P<sp1>[ \t]*+)(?P<sep>===|!==|==|!=|:=|=>|\|\|=|\?\?=|\?=|=|:|,)?(?P<sp2>[ \t]*+)
    (?:
        (?P<prefix>[rRbBuUfF]{0,2})
        (?: "(?P<dq>(?:[^"\\\n]|\\.){0,2048}+)"
          | '(?P<sq>(?:[^'\\\n]|\\.){0,2048}+)'
          | `(?P<bq>[^`\n]{0,2048}+)`
        )
      | (?(sep)(?P<bare>[^\s'"`;&]{1,256}+)(?=[ \t;&"'`]|$)|(?!))
    )
    """,
    re.VERBOSE | re.MULTILINE,
)

_KEYWORD_HINT_RE = re.compile(r"pass|pwd|secret|token|key|auth|cred")
_IDENT_RUN_RE = re.compile(r"[\w$.\-]+")

_TEMPLATE_RE = re.compile(r"\$\{|\{\{|\}\}|%\(|%[sd]\b|#\{|\{[A-Za-z_][\w.]*\}|^\$[A-Za-z_(]")
_WRAPPED_RE = re.compile(r"^(?:<.*>|\[.*\]|\{.*\}|\(.*\)|\|.*\||%[A-Za-z_]\w*%)$", re.DOTALL)
_REGEX_LIKE_RE = re.compile(
    r"\\[dwsbDWSB]|\[\^|\(\?[:=!<P]|\.[*+]|\[[^\]]*[0-9A-Za-z]-[0-9A-Za-z][^\]]*\][*+?{]?"
)
_CALL_LIKE_RE = re.compile(r"^[A-Za-z_$][\w.$]*\(.*\)$")
_MARKUP_RE = re.compile(r"<[^<>\s]*>")
_ESCAPE_RE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PATH_RE = re.compile(r"^(?:(?:~|\.{1,2})?/[\w.\-/]*|[A-Za-z]:\\[\w.\-\\ ]*)$")
_VERSION_RE = re.compile(r"^v?\d+(?:\.\d+)+(?:[-+.][\w.]+)?$")
_HEX_COLOUR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_DOTTED_REF_RE = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$")
_NUMERIC_MULTI_RE = re.compile(r"^\d+(?:[-.:/]\d+)+$")


def _literal_is_secret(value: str) -> bool:
    """Whether a literal value under a secret-named key is a real secret."""
    if len(value) < 6 or any(c.isspace() for c in value):
        return False
    if "\\" in value and len(_ESCAPE_RE.sub("x", value)) < 6:
        return False
    if _MARKUP_RE.search(value):
        return False
    if "..." in value or "…" in value or "***" in value:
        return False
    if _REGEX_LIKE_RE.search(value) or _CALL_LIKE_RE.match(value):
        return False
    if _TEMPLATE_RE.search(value) or _WRAPPED_RE.match(value):
        return False
    counts = Counter(value)
    if len(counts) <= 3 or max(counts.values()) * 2 > len(value):
        return False
    if (
        _URL_RE.match(value)
        or _EMAIL_RE.match(value)
        or _PATH_RE.match(value)
        or _VERSION_RE.match(value)
        or _HEX_COLOUR_RE.match(value)
        or _NUMERIC_MULTI_RE.match(value)
    ):
        return False
    return not _is_name_like(value)


def _bare_is_secret(value: str) -> bool:
    """Unquoted values (env files, YAML, INI): also reject code references."""
    if value[0] in "$*&!|>#@%<[{(" or value[-1] in ",;(":
        return False
    if any(c in value for c in "()[]{}"):
        return False
    if _DOTTED_REF_RE.match(value):
        return False
    return _literal_is_secret(value)


_WHITESPACE_RE = re.compile(r"\s")


def _at_line_start(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    head = text[line_start:pos].strip()
    return head in ("", "-", "export")


_LINE_SEPARATORS = frozenset({"=", ":", ":=", "?="})


def _names_password(key: str) -> bool:
    """The name ends with an unambiguous password word (not the verb "pass")."""
    words = _CAMEL_WORD_RE.findall(key)
    return bool(words) and words[-1].lower().endswith(("password", "passwd", "passphrase"))


def _is_define(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return text[line_start:pos].strip().replace(" ", "") == "#define"


def _is_call_pair(text: str, m: re.Match[str]) -> bool:
    """``setProperty("password", "...")``: a quoted secret name as a call's first argument.

    The name must end with the secret word, so lists of strings do not qualify.
    """
    if not m.group("close").strip("]"):
        return False
    key_start = m.start("key")
    before = text[max(0, key_start - 40) : key_start].rstrip("\"'`").rstrip()
    key = m.group("key")
    words = [w.lower() for w in _CAMEL_WORD_RE.findall(key)]
    if not before.endswith("(") or not words or _secret_key_kind(key) is None:
        return False
    last = words[-1]
    return (
        last in _PASSWORD_WORDS
        or last in _SECRET_WORDS
        or (last == "key" and len(words) > 1 and words[-2] in _KEY_QUALIFIERS)
    )


def _bare_ends_value(text: str, end: int, tight: bool) -> bool:
    """A spaced unquoted value (``password = hunter2``) must end its line.

    A tight ``KEY=value`` may be followed by more shell arguments
    (``docker run -e DB_PASSWORD=... postgres``, ``--password=... shop``).
    """
    if tight:
        return True
    line_end = text.find("\n", end)
    rest = text[end : len(text) if line_end < 0 else line_end].lstrip(" \t")
    return not rest or rest[0] in "#;&\"'`" or rest.startswith("//")


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c in "_$.-\x00"


def _scan_keyword(text: str, lowered: str) -> Iterator[_Candidate]:
    """Try the keyword rule on each identifier that contains a secret-ish word."""
    floor = 0
    for hint in _KEYWORD_HINT_RE.finditer(lowered):
        pos = hint.start()
        if pos < floor:
            continue
        start = pos
        while start > floor and _is_ident_char(text[start - 1]):
            start -= 1
        m = None
        if start == 0 or not _is_ident_char(text[start - 1]):
            m = _KEYWORD_RE.match(text, start)
        cand = None if m is None else _keyword_candidate(text, m)
        if cand is not None and m is not None:
            yield cand
            # An unquoted value may swallow a later assignment (``A=sk-...,B=...``); if a
            # stronger finding claims part of the value, that assignment must still count.
            floor = m.end("key") if m.group("bare") is not None else m.end()
        else:
            ident = _IDENT_RUN_RE.match(text, pos)
            floor = ident.end() if ident else pos + 1


# Matched against the lower-cased text (same offsets); groups are read from the original.
_NAME_VALUE_RE = re.compile(
    r"""
    (?:name|key)["']?[ \t]*[:=][ \t]*
    ["']?(?P<key>[a-z_][\w.\-]{0,127})["']?[ \t]*,?[ \t]*(?:\r?\n[ \t]*)?
    ["']?value["']?[ \t]*[:=][ \t]*
    (?: "(?P<dq>[^"\n]{0,2048})" | '(?P<sq>[^'\n]{0,2048})'
      | (?P<bare>[^\s'"\#,{}\[\]][^\s,}\#]{0,511}) )
    """,
    re.VERBOSE,
)
_XML_ELEMENT_RE = re.compile(
    r"<(?P<key>[A-Za-z_][\w.\-]{0,127})>(?P<value>[^<>\s]{1,512})</(?P=key)>"
)


def _scan_name_value(text: str, lowered: str) -> Iterator[_Candidate]:
    """The keyword rule for names and values held apart.

    Covers ``name: DB_PASSWORD`` / ``value: ...`` pairs (Kubernetes env, ECS task
    definitions, .NET ``<add key=... value=...>``) and ``<password>...</password>``.
    """
    if "value" in lowered:
        for m in _NAME_VALUE_RE.finditer(lowered):
            if m.start() and _is_ident_char(text[m.start() - 1]):
                continue
            kind = _secret_key_kind(text[m.start("key") : m.end("key")])
            if kind is None:
                continue
            group = next(g for g in ("dq", "sq", "bare") if m.group(g) is not None)
            value = text[m.start(group) : m.end(group)]
            ok = _bare_is_secret(value) if group == "bare" else _literal_is_secret(value)
            if ok:
                yield _Candidate(_TIER_KEYWORD, 1, kind, *m.span(group))
    if "</" in text:
        for m in _XML_ELEMENT_RE.finditer(text):
            kind = _secret_key_kind(m.group("key"))
            if kind is not None and _literal_is_secret(m.group("value")):
                yield _Candidate(_TIER_KEYWORD, 1, kind, *m.span("value"))


def _keyword_candidate(text: str, m: re.Match[str]) -> _Candidate | None:
    kind = _secret_key_kind(m.group("key"))
    if kind is None:
        return None
    sep = m.group("sep")
    if m.group("ann") and m.group("close"):
        return None
    if sep is None:
        # ``password "..."`` (SQL, Ruby DSLs, prose) and ``#define API_KEY "..."``.
        if m.group("bare") is not None or not m.group("sp1") or m.group("close") or m.group("ann"):
            return None
        if m.group("bq") is not None:
            return None
        if not _is_define(text, m.start()) and not _names_password(m.group("key")):
            return None
    if sep == "," and not _is_call_pair(text, m):
        return None
    if sep in ("==", "!=", "===", "!==") and kind != "password":
        # ``token == "IDENTIFIER"`` is parser code; ``password == "..."`` is a hard-coded check.
        return None
    bare = m.group("bare")
    if bare is not None:
        line_start = _at_line_start(text, m.start("key"))
        tight = not m.group("sp1") and not m.group("sp2")
        # Unquoted values: env/INI/YAML lines, or ``KEY=value`` with nothing around ``=``
        # (flags, connection strings, query strings, ``docker run -e``).
        if not (line_start and sep in _LINE_SEPARATORS) and not (tight and sep == "="):
            return None
        start, end = m.span("bare")
        if line_start:
            # In env, INI and YAML lines ``;`` and ``&`` belong to the value.
            space = _WHITESPACE_RE.search(text, end)
            end = space.start() if space else len(text)
            bare = text[start:end]
        if not _bare_is_secret(bare) or not _bare_ends_value(text, end, tight):
            return None
    else:
        group = "dq" if m.group("dq") is not None else "sq" if m.group("sq") is not None else "bq"
        value = m.group(group)
        if "f" in m.group("prefix").lower() and "{" in value:
            return None
        if not _literal_is_secret(value) or value == m.group("key"):
            return None
        start, end = m.span(group)
    return _Candidate(_TIER_KEYWORD, 0, kind, start, end)


# ---------------------------------------------------------------------------------------
# Entropy rule
# ---------------------------------------------------------------------------------------

_ENTROPY_QUOTED_RE = re.compile(r"""(?P<q>["'`])(?P<tok>[A-Za-z0-9+/=_\-]{20,512}+)(?P=q)""")
_ENTROPY_ASSIGNED_RE = re.compile(
    r"""(?<![=!<>:])=[ \t]*+(?P<tok>[A-Za-z0-9+/=_\-]{20,512}+)(?=[\s,;)\]}&"'`]|$)"""
)
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_DIGEST_PREFIX_RE = re.compile(r"^(?:sha\d*|md5)[-_]", re.IGNORECASE)
_IDENT_RE = re.compile(r"[A-Za-z_$][\w$.\-]*")
_HASH_CONTEXT_WORDS = _words(
    "hash hashes checksum checksums digest integrity sha md commit revision rev etag "
    "fingerprint uuid guid resolved sum"
)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


_LOWER_WORD_RE = re.compile(r"[A-Z]?[a-z]{2,}")


def _looks_like_identifier(token: str) -> bool:
    """Mostly made of words: ``Qwen2_5OmniToken2WavDiTModel``, ``enable_fp32_offload``.

    About 1% of random 32-character base64 strings reach the threshold.
    """
    letters = sum(1 for c in token if c.isalpha())
    covered = sum(len(w) for w in _LOWER_WORD_RE.findall(token))
    return letters > 0 and covered >= 0.8 * letters


def _is_high_entropy(token: str) -> bool:
    n = len(token)
    if _UUID_RE.match(token) or _DIGEST_PREFIX_RE.match(token):
        return False
    if _looks_like_identifier(token):
        return False
    if not _has_digit(token) or not _not_placeholder_token(token):
        return False
    segments = [s for s in re.split(r"[-_/+=]+", token) if s]
    if all(s.isdigit() or (s.isalpha() and _is_wordy(s)) for s in segments):
        return False
    if all(c in _HEX_DIGITS for c in token):
        if not any(c.isalpha() for c in token):
            return False
        return _shannon_entropy(token) >= min(math.log2(n) - 1.5, 3.0)
    if not (_has_upper(token) and _has_lower(token)):
        return False
    return _shannon_entropy(token) >= min(math.log2(n) - 0.75, 4.0)


@dataclass(frozen=True, slots=True)
class _LineContext:
    """The identifiers of one line, with running counts of secret and hash words.

    Random-looking tokens on the line are not read as words: once redacted they vanish,
    and what they happened to spell must not change the verdict on a second pass.
    """

    starts: list[int]
    secret_counts: list[int]
    hash_counts: list[int]

    @classmethod
    def build(cls, context: str, line_start: int, line_end: int) -> _LineContext:
        starts: list[int] = []
        secret_counts = [0]
        hash_counts = [0]
        for m in _IDENT_RE.finditer(context, line_start, line_end):
            ident = m.group()
            secretish = hashy = False
            if len(ident) < 20 or not _is_high_entropy(ident):
                secretish = _secret_key_kind(ident, loose=True) is not None
                words = {w.lower() for w in _CAMEL_WORD_RE.findall(ident)}
                hashy = not words.isdisjoint(_HASH_CONTEXT_WORDS)
            starts.append(m.start())
            secret_counts.append(secret_counts[-1] + secretish)
            hash_counts.append(hash_counts[-1] + hashy)
        return cls(starts, secret_counts, hash_counts)

    def vouches_for(self, start: int, end: int) -> bool:
        """Outside ``[start, end)`` the line names a secret and says nothing about hashes."""
        i = bisect_left(self.starts, start)
        j = bisect_left(self.starts, end)
        secret = self.secret_counts[-1] - (self.secret_counts[j] - self.secret_counts[i])
        hashy = self.hash_counts[-1] - (self.hash_counts[j] - self.hash_counts[i])
        return secret > 0 and hashy == 0


# Markup attributes whose values are names, not credentials: ``id="toc-HMAC_002d..."``.
_MARKUP_ATTR_RE = re.compile(r"(?<![\w-])(?:id|href|class|for|name|rel|src|label|title)=[\"']?$")


def _scan_entropy(text: str, context: str) -> Iterator[_Candidate]:
    """High-entropy tokens of ``text``; lines are judged on ``context``.

    ``context`` is the same text with the spans of stronger findings masked, so that a
    second pass, which sees placeholders there, reaches the same verdicts.
    """
    newlines: list[int] | None = None
    lines: dict[int, _LineContext] = {}
    for regex in (_ENTROPY_QUOTED_RE, _ENTROPY_ASSIGNED_RE):
        pos = 0
        # Matches may share a quote: the closing quote of one literal can open the next
        # (``"a"b"``), so the scan resumes at the end of each token, not of each match.
        while (m := regex.search(text, pos)) is not None:
            pos = m.end("tok")
            token = m.group("tok")
            if not _is_high_entropy(token):
                continue
            start, end = m.span("tok")
            if _MARKUP_ATTR_RE.search(text, max(0, start - 16), start):
                continue
            if newlines is None:
                newlines = [nl.start() for nl in _NEWLINE_RE.finditer(context)]
            k = bisect_left(newlines, start)
            line_start = newlines[k - 1] + 1 if k else 0
            line = lines.get(line_start)
            if line is None:
                line_end = newlines[k] if k < len(newlines) else len(context)
                line = lines[line_start] = _LineContext.build(context, line_start, line_end)
            # The token itself is left out so that it cannot vouch for itself.
            if line.vouches_for(start, end):
                yield _Candidate(_TIER_ENTROPY, 0, "high_entropy_string", start, end)


_NEWLINE_RE = re.compile(r"\n")


# ---------------------------------------------------------------------------------------
# Scanning and overlap resolution
# ---------------------------------------------------------------------------------------


_ASCII_LOWER = {ord(c): ord(c.lower()) for c in string.ascii_uppercase}


def _left_ok(text: str, start: int, pattern: _Pattern) -> bool:
    if start == 0 or text[start - 1] not in pattern.left:
        return True
    allow = pattern.left_allow
    return bool(allow) and text.endswith(allow, 0, start)


def _scan_patterns(
    text: str, lowered: str, patterns: tuple[_Pattern, ...], tier: int, rank0: int
) -> Iterator[_Candidate]:
    for offset, pattern in enumerate(patterns):
        if not any(h in lowered for h in pattern.hints):
            continue
        pos = 0
        while (m := pattern.regex.search(text, pos)) is not None:
            value = m.group(pattern.group)
            if (
                not _left_ok(text, m.start(), pattern)
                or (pattern.check is not None and not pattern.check(value))
                or (pattern.match_check is not None and not pattern.match_check(m))
            ):
                # A rejected match must not hide a valid one that starts inside it.
                pos = m.start() + 1
                continue
            start, end = m.span(pattern.group)
            yield _Candidate(tier, rank0 + offset, pattern.kind, start, end)
            pos = max(m.end(), m.start() + 1)


def _candidates(text: str) -> Iterator[_Candidate]:
    lowered = text.lower()
    if len(lowered) != len(text):
        # A few characters grow when lower-cased; keep offsets aligned.
        lowered = text.translate(_ASCII_LOWER)
    yield from _scan_patterns(text, lowered, _BLOCK_PATTERNS, _TIER_BLOCK, 0)
    yield from _scan_patterns(text, lowered, _PROVIDER_PATTERNS, _TIER_PROVIDER, 100)
    yield from _scan_patterns(text, lowered, _STRUCTURAL_PATTERNS, _TIER_STRUCTURAL, 200)
    yield from _scan_keyword(text, lowered)
    yield from _scan_name_value(text, lowered)


def _resolve(candidates: list[_Candidate], text: str) -> list[Finding]:
    """Keep a non-overlapping subset, preferring stronger rules, then longer spans.

    A keyword or entropy span that a stronger finding covers only in part is not thrown
    away: the uncovered remainder (``API_KEY=sk-...=<more secret>``) is redacted under the
    weaker kind when it still looks like a secret.
    """
    candidates.sort(key=lambda c: (c.tier, c.start - c.end, c.rank, c.start))
    starts: list[int] = []
    ends: list[int] = []
    kinds: list[str] = []

    def add(kind: str, start: int, end: int) -> None:
        i = bisect_left(starts, start)
        starts.insert(i, start)
        ends.insert(i, end)
        kinds.insert(i, kind)

    for c in candidates:
        i = bisect_left(starts, c.start)
        overlaps = (i > 0 and ends[i - 1] > c.start) or (i < len(starts) and starts[i] < c.end)
        if not overlaps:
            add(c.kind, c.start, c.end)
        elif c.tier >= _TIER_KEYWORD:
            for start, end in _uncovered(starts, ends, c.start, c.end):
                if _residue_is_secret(text[start:end]):
                    add(c.kind, start, end)
    return [Finding(k, s, e) for k, s, e in zip(kinds, starts, ends, strict=True)]


def _uncovered(starts: list[int], ends: list[int], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` outside the accepted (sorted, disjoint) spans."""
    pieces: list[tuple[int, int]] = []
    pos = start
    i = max(0, bisect_left(starts, start) - 1)
    while i < len(starts) and starts[i] < end:
        if ends[i] > pos:
            if starts[i] > pos:
                pieces.append((pos, starts[i]))
            pos = max(pos, ends[i])
        i += 1
    if pos < end:
        pieces.append((pos, end))
    return pieces


_RESIDUE_TRIM = "=:-_./+,;&\"'` \t"


def _residue_is_secret(piece: str) -> bool:
    core = piece.strip(_RESIDUE_TRIM)
    if sum(1 for c in core if c.isalnum()) < 4 or _MASK in core:
        return False
    return not _is_name_like(core) and _not_placeholder_token(core) and _has_digit(core)


def find_secrets(text: str) -> list[Finding]:
    """Every secret in ``text`` as non-overlapping findings sorted by position.

    Placeholders written by :func:`redact` are never reported.
    """
    if not text:
        return []
    masked = text
    if "<SECRET:" in text:
        # Same-length masking keeps offsets valid; the mask character is outside every
        # token alphabet, and a span containing it is never a candidate (so a NUL
        # character inside a value also keeps that value from being reported).
        masked = PLACEHOLDER_RE.sub(lambda m: _MASK * len(m.group()), text)
    candidates = [c for c in _candidates(masked) if _usable(masked, c)]
    strong = _resolve(list(candidates), masked)
    context = masked
    if strong:
        parts: list[str] = []
        pos = 0
        for f in strong:
            parts.append(masked[pos : f.start])
            parts.append(_MASK * (f.end - f.start))
            pos = f.end
        parts.append(masked[pos:])
        context = "".join(parts)
    candidates.extend(c for c in _scan_entropy(masked, context) if _usable(masked, c))
    return _resolve(candidates, masked)


def _usable(masked: str, c: _Candidate) -> bool:
    return c.end > c.start and _MASK not in masked[c.start : c.end]


def redact(text: str) -> str:
    """Return ``text`` with every detected secret replaced by ``<SECRET:kind>``.

    Idempotent: ``redact(redact(text)) == redact(text)``. After replacing, the lines
    around each placeholder are scanned again, and anything a replacement exposed (text a
    now-removed neighbour had hidden) is redacted too.
    """
    findings = find_secrets(text)
    for _ in range(_MAX_ROUNDS):
        if not findings:
            break
        text, spans = _replace(text, findings)
        findings = []
        for a, b in _neighbourhoods(text, spans):
            findings.extend(
                Finding(f.kind, a + f.start, a + f.end) for f in find_secrets(text[a:b])
            )
    return text


_MAX_ROUNDS = 4


def _replace(text: str, findings: list[Finding]) -> tuple[str, list[tuple[int, int]]]:
    """Apply ``findings``; also return where the placeholders landed."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    size = 0
    for f in findings:
        before = text[pos : f.start]
        placeholder = f"<SECRET:{f.kind}>"
        parts.append(before)
        parts.append(placeholder)
        size += len(before)
        spans.append((size, size + len(placeholder)))
        size += len(placeholder)
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts), spans


def _neighbourhoods(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merged ranges of whole lines: each span's lines plus one line either side."""
    ranges: list[tuple[int, int]] = []
    for start, end in spans:
        if ranges and start < ranges[-1][1]:
            if end > ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], _lines_after(text, end))
            continue
        floor = ranges[-1][1] if ranges else 0
        first = _lines_before(text, start, floor)
        last = _lines_after(text, end)
        if ranges and first <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], last)
        else:
            ranges.append((first, last))
    return ranges


def _lines_before(text: str, pos: int, floor: int) -> int:
    """Start of the line before the one holding ``pos`` (never below ``floor``)."""
    for _ in range(2):
        newline = text.rfind("\n", floor, pos)
        if newline < 0:
            return floor
        pos = newline
    return pos + 1


def _lines_after(text: str, pos: int) -> int:
    """End (after its newline) of the line after the one holding ``pos``."""
    for _ in range(2):
        newline = text.find("\n", pos)
        if newline < 0:
            return len(text)
        pos = newline + 1
    return pos


def contains_secret(text: str) -> bool:
    """Whether ``text`` holds at least one secret (placeholders do not count)."""
    return bool(find_secrets(text))
