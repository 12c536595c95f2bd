"""``lbkit cookie new-key`` and ``lbkit cookie inspect``: fresh keys in the form a configuration
holds, what a sealed cookie holds as text and JSON, every reason a cookie is refused, and the
usage errors."""

from __future__ import annotations

import io
import json
import time

import pytest

from lbkit.cli import main
from lbkit.waitingroom.config import CookieSettings, WaitingRoomConfig
from lbkit.waitingroom.cookies import (
    MAX_TOKEN_LENGTH,
    TOKEN_LENGTH,
    CookieSealer,
    QueueCookie,
    decode_key,
    encode_key,
)

KEY = bytes(range(32))
ENCODED = encode_key(1, KEY)
OTHER_KEY = bytes(range(100, 116))
#: Defaults of a room's configuration, which inspect uses unless told otherwise.
ROOM = WaitingRoomConfig(total_active_users=1, new_users_per_minute=1).room_id
COOKIE_NAME = CookieSettings().name

QUEUED = QueueCookie(
    bucket_id=28_000_000,
    last_check_in=1_680_000_012.5,
    refresh_interval=21.337,
    expires_at=1_680_000_312.5,
)
ADMITTED = QueueCookie(
    bucket_id=28_000_000,
    last_check_in=1_680_000_072.5,
    refresh_interval=20.0,
    expires_at=1_680_000_372.5,
    accepted_at=1_680_000_060.25,
)


def fixed_nonce(size: int) -> bytes:
    return bytes(range(size))


def seal(
    cookie: QueueCookie,
    *,
    keys: dict[int, bytes] | None = None,
    primary: int = 1,
    room_id: str = ROOM,
    cookie_name: str = COOKIE_NAME,
) -> str:
    sealer = CookieSealer(
        {1: KEY} if keys is None else keys,
        primary=primary,
        room_id=room_id,
        cookie_name=cookie_name,
        nonce_source=fixed_nonce,
    )
    return sealer.seal(cookie)


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line a usage mistake prints, after checking it exits 2."""
    with pytest.raises(SystemExit) as raised:
        run_cli(*argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    return err


# --- new-key ----------------------------------------------------------------------------------


def test_new_key_prints_one_encoded_32_byte_key_with_id_1() -> None:
    """By default new-key prints one 'key_id:base64url' line: key id 1, a 32-byte key."""
    status, text = run_cli("cookie", "new-key")
    assert status == 0
    assert text.endswith("\n")
    assert text.count("\n") == 1
    key_id, key = decode_key(text.strip())
    assert (key_id, len(key)) == (1, 32)
    assert encode_key(key_id, key) == text.strip()


def test_new_key_id_and_size() -> None:
    """--id and --size choose the key id and a 16-byte key."""
    _, text = run_cli("cookie", "new-key", "--id", "200", "--size", "16")
    key_id, key = decode_key(text.strip())
    assert (key_id, len(key)) == (200, 16)


def test_new_key_is_fresh_each_time() -> None:
    """Two calls give two different keys."""
    assert run_cli("cookie", "new-key")[1] != run_cli("cookie", "new-key")[1]


def test_new_key_json() -> None:
    """--json prints the key id, the size and the encoded key (what --key takes)."""
    status, text = run_cli("cookie", "new-key", "--id", "0", "--json")
    assert status == 0
    document = json.loads(text)
    assert sorted(document) == ["key", "key_id", "size"]
    assert document["key_id"] == 0
    assert document["size"] == 32
    assert decode_key(document["key"])[0] == 0
    assert len(decode_key(document["key"])[1]) == 32


def test_a_new_key_opens_what_it_sealed(capsys: pytest.CaptureFixture[str]) -> None:
    """A key from new-key seals a cookie that inspect opens with the same key."""
    _, text = run_cli("cookie", "new-key", "--id", "9")
    key_id, key = decode_key(text.strip())
    token = seal(QUEUED, keys={key_id: key}, primary=key_id)
    status, shown = run_cli("cookie", "inspect", token, "--key", text.strip(), "--now", "0")
    assert status == 0
    assert "key id            9" in shown.splitlines()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--id", "256"], "lbkit cookie new-key: error: --id is 256; key ids are ints in 0..255"),
        (["--id", "-1"], "--id is -1; key ids are ints in 0..255"),
        (["--id", "one"], "argument --id: invalid int value: 'one'"),
        (["--size", "24"], "argument --size: invalid choice: 24 (choose from 16, 32)"),
    ],
)
def test_new_key_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Key ids outside 0..255 and sizes other than 16 and 32 are usage errors (exit 2)."""
    assert message in usage_error(capsys, "cookie", "new-key", *argv)


# --- inspect ----------------------------------------------------------------------------------


def test_inspect_a_queued_cookie() -> None:
    """inspect shows every field, ISO 8601 UTC beside epoch seconds, and the time left."""
    token = seal(QUEUED)
    status, text = run_cli("cookie", "inspect", token, "--key", ENCODED, "--now", "1680000030")
    assert status == 0
    assert text.splitlines() == [
        "room              'room', cookie '__lbkit_wr'",
        "key id            1",
        "state             queued",
        "bucket            28000000: the minute from 2023-03-28T10:40:00.000Z (1680000000)",
        "last check-in     2023-03-28T10:40:12.500Z (1680000012.5)",
        "accepted at       - (queued)",
        "refresh interval  21.337 s",
        "expires at        2023-03-28T10:45:12.500Z (1680000312.5)",
        "now               2023-03-28T10:40:30.000Z (1680000030): valid for 282.5 s more",
    ]


def test_inspect_an_expired_admitted_cookie() -> None:
    """An expired cookie is still shown (exit 0), with how long ago it expired."""
    token = seal(ADMITTED)
    status, text = run_cli("cookie", "inspect", token, "--key", ENCODED, "--now", "1680000400")
    assert status == 0
    lines = text.splitlines()
    assert lines[2] == "state             admitted"
    assert lines[5] == "accepted at       2023-03-28T10:41:00.250Z (1680000060.25)"
    assert lines[6] == "refresh interval  20 s"
    assert (
        lines[-1] == "now               2023-03-28T10:46:40.000Z (1680000400): expired 27.5 s ago"
    )


def test_a_cookie_has_expired_at_exactly_its_expiry() -> None:
    """As CookieSealer.open has it: valid while now < expires_at."""
    token = seal(QUEUED)
    _, before = run_cli("cookie", "inspect", token, "--key", ENCODED, "--now", "1680000312.499")
    _, at = run_cli("cookie", "inspect", token, "--key", ENCODED, "--now", "1680000312.5")
    assert before.splitlines()[-1].endswith(": valid for 0.001 s more")
    assert at.splitlines()[-1].endswith(": expired 0 s ago")


def test_inspect_json_round_trips_the_cookie() -> None:
    """--json prints the cookie's fields, which rebuild the sealed cookie, and the checks."""
    token = seal(ADMITTED)
    status, text = run_cli(
        "cookie", "inspect", token, "--key", ENCODED, "--now", "1680000100.5", "--json"
    )
    assert status == 0
    document = json.loads(text)
    assert document == {
        "room_id": "room",
        "cookie_name": "__lbkit_wr",
        "key_id": 1,
        "state": "admitted",
        "bucket_id": 28_000_000,
        "bucket_start": 1_680_000_000.0,
        "last_check_in": 1_680_000_072.5,
        "accepted_at": 1_680_000_060.25,
        "refresh_interval": 20.0,
        "expires_at": 1_680_000_372.5,
        "now": 1_680_000_100.5,
        "expired": False,
    }
    fields = ("bucket_id", "last_check_in", "refresh_interval", "expires_at", "accepted_at")
    assert QueueCookie(**{name: document[name] for name in fields}) == ADMITTED
    _, queued = run_cli("cookie", "inspect", seal(QUEUED), "--key", ENCODED, "--json", "--now", "0")
    assert json.loads(queued)["accepted_at"] is None
    assert json.loads(queued)["state"] == "queued"


def test_inspect_with_a_keyring_opens_every_key() -> None:
    """With several --key options, a cookie sealed with any of them opens, and shows its id."""
    keys = {1: KEY, 7: OTHER_KEY}
    old, new = seal(QUEUED, keys=keys, primary=1), seal(QUEUED, keys=keys, primary=7)
    options = ["--key", encode_key(7, OTHER_KEY), "--key", ENCODED, "--json", "--now", "0"]
    assert json.loads(run_cli("cookie", "inspect", old, *options)[1])["key_id"] == 1
    assert json.loads(run_cli("cookie", "inspect", new, *options)[1])["key_id"] == 7


def test_inspect_another_room_and_cookie_name() -> None:
    """--room and --cookie-name open a room's cookies; a __Host- prefix on the name is dropped."""
    token = seal(QUEUED, room_id="tickets", cookie_name="wr")
    for name in ("wr", "__Host-wr"):
        status, text = run_cli(
            "cookie", "inspect", token, "--key", ENCODED, "--room", "tickets",
            "--cookie-name", name, "--now", "0",
        )  # fmt: skip
        assert status == 0
        assert text.splitlines()[0] == "room              'tickets', cookie 'wr'"


def test_inspect_reads_the_clock_without_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --now the expiry is checked against the machine's clock."""
    monkeypatch.setattr(time, "time", lambda: 1_680_000_400.0)
    _, text = run_cli("cookie", "inspect", seal(QUEUED), "--key", ENCODED, "--json")
    assert json.loads(text)["now"] == 1_680_000_400.0
    assert json.loads(text)["expired"] is True


def flip(token: str, index: int) -> str:
    """The token with one character changed to another base64url character."""
    return token[:index] + ("B" if token[index] == "A" else "A") + token[index + 1 :]


GOOD = seal(QUEUED)
REFUSALS = {
    "too long": (GOOD + "A" * (MAX_TOKEN_LENGTH + 1 - TOKEN_LENGTH), "too_large"),
    "too short": (GOOD[:-1], "malformed"),
    "empty": ("", "malformed"),
    "not base64url": (GOOD[:-1] + "/", "malformed"),
    "not ASCII": (GOOD[:-1] + "é", "malformed"),
    "another format version": (flip(GOOD, 1), "malformed"),
    "another room": (seal(QUEUED, room_id="shop"), "wrong_room"),
    "another cookie name": (seal(QUEUED, cookie_name="queue"), "wrong_room"),
    "another key id": (seal(QUEUED, keys={2: KEY}, primary=2), "unknown_key"),
    "another key under the same id": (seal(QUEUED, keys={1: OTHER_KEY}), "tampered"),
    "an altered payload": (flip(GOOD, 40), "tampered"),
}


@pytest.mark.parametrize(("token", "reason"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_a_refused_cookie_prints_its_reason_and_exits_1(
    token: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every reason inspect refuses a cookie for: one line on stderr with the reason, exit 1."""
    status, text = run_cli("cookie", "inspect", token, "--key", ENCODED, "--now", "0")
    assert (status, text) == (1, "")
    err = capsys.readouterr().err
    assert err.startswith(f"lbkit: error: the cookie is refused ({reason}): the cookie ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_refusal_messages_say_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong room names the room and cookie name used; an unknown key names the key ids."""
    run_cli("cookie", "inspect", seal(QUEUED, room_id="shop"), "--key", ENCODED, "--now", "0")
    assert "(this is room 'room', cookie '__lbkit_wr')" in capsys.readouterr().err
    unknown = seal(QUEUED, keys={2: KEY}, primary=2)
    run_cli("cookie", "inspect", unknown, "--key", ENCODED, "--now", "0")
    assert "sealed with key id 2, which is not in the keyring (key ids 1)" in (
        capsys.readouterr().err
    )


BAD_KEY_FORM = (
    "an encoded key is not of the form 'key_id:base64url' (a key id in 0..255, a colon, a 16- "
    "or 32-byte key in unpadded base64url)"
)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["nope"], f"lbkit cookie inspect: error: --key: {BAD_KEY_FORM}"),
        ([KEY.hex()], f"--key: {BAD_KEY_FORM}"),
        ([ENCODED + "="], f"--key: {BAD_KEY_FORM}"),
        (["x:" + ENCODED[2:]], f"--key: {BAD_KEY_FORM}"),
        ([ENCODED, "2"], f"--key #2: {BAD_KEY_FORM}"),
        (["256" + ENCODED[1:]], "--key: key id is 256; key ids are ints in 0..255"),
        (["1:AAAA"], "--key: keys[1] is 3 bytes; AES-GCM-SIV keys are 16 or 32 bytes"),
        ([ENCODED, encode_key(1, OTHER_KEY)], "--key #2: key id 1 is given twice"),
    ],
)
def test_bad_keys_are_usage_errors_naming_the_key_option(
    keys: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key not in the 'key_id:base64url' form is a usage error (exit 2) naming which --key,
    and the message never echoes the key."""
    options = [item for key in keys for item in ("--key", key)]
    err = usage_error(capsys, "cookie", "inspect", GOOD, *options)
    assert message in err
    assert ENCODED[2:] not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --key"),
        (["--key", ENCODED, "--now", "nan"], "--now is nan; it must be seconds since the epoch"),
        (["--key", ENCODED, "--now", "-1"], "--now is -1; it must be seconds since the epoch"),
        (["--key", ENCODED, "--now", "1e300"], "--now is 1e+300; it must be seconds since"),
        (["--key", ENCODED, "--room", ""], "--room is ''; it must be a non-empty str"),
        (["--key", ENCODED, "--cookie-name", "a b"], "--cookie-name is 'a b'; a cookie name"),
    ],
)
def test_inspect_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing key, a --now that is no time, a bad room or cookie name exit 2."""
    assert message in usage_error(capsys, "cookie", "inspect", GOOD, *argv)


def test_cookie_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    """`lbkit cookie` alone is a usage error."""
    assert "the following arguments are required: ACTION" in usage_error(capsys, "cookie")
