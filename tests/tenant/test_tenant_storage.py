"""Durable state in SQLite: what survives a restart, and what the file never holds."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import attrs
import pyotp
import pytest
from _tenantkit import Serve, error_of
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mfaflow.tenant import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    REFRESH_TOKEN,
    Authenticator,
    AuthenticatorConfig,
    Clock,
    SQLiteStore,
    Tenant,
    TenantConfig,
    TenantSetupError,
    User,
)


def test_enrolment_and_refresh_tokens_survive_a_restart(
    base_config: TenantConfig, serve: Serve, tmp_path: Path
) -> None:
    """A new tenant on the same file knows the authenticator and the refresh token."""
    config = attrs.evolve(base_config, state_file=str(tmp_path / "tenant.db"))
    with serve(config) as first:
        secret, tokens = first.enrol_otp()
        added = first.tenant.add_user("later@example.test", "later-password-1")

    with serve(config) as second:
        refreshed = second.token(
            grant_type=REFRESH_TOKEN, refresh_token=tokens["refresh_token"]
        )
        challenged = second.login()
        verified = second.verify_otp(
            challenged.json()["mfa_token"], second.next_totp(secret)
        )
        found = second.tenant.find_user("later@example.test")

    assert refreshed.status_code == 200
    assert challenged.json()["mfa_requirements"] == {
        "challenge": [{"type": "otp"}, {"type": "recovery-code"}]
    }
    assert verified.status_code == 200
    assert found == added


def test_state_file_holds_no_password_token_or_code(
    base_config: TenantConfig, serve: Serve, tmp_path: Path
) -> None:
    """The SQLite file keeps hashes and digests, never a password, token or code."""
    path = tmp_path / "tenant.db"
    with serve(attrs.evolve(base_config, state_file=str(path))) as api:
        mfa_token = api.mfa_token()
        enrolment = api.associate(mfa_token, authenticator_types=["otp"])
        tokens = api.verify_otp(mfa_token, api.totp(enrolment["secret"])).json()
        api.tenant.add_user("other@example.test", "another-secret-password")

    content = path.read_bytes()
    for secret in (
        DEMO_PASSWORD,
        "another-secret-password",
        tokens["refresh_token"],
        enrolment["recovery_codes"][0],
        mfa_token,
    ):
        assert secret.encode() not in content
    assert DEMO_EMAIL.encode() in content


def test_configured_authenticators_are_seeded_once(
    base_config: TenantConfig, tmp_path: Path
) -> None:
    """Restarting on the same file does not duplicate configured authenticators."""
    user = attrs.evolve(
        base_config.users[0],
        authenticators=(AuthenticatorConfig("push"),),
        recovery_code="ABCDEFGHIJKLMNOPQRSTUVWX",
    )
    config = attrs.evolve(
        base_config, users=(user,), state_file=str(tmp_path / "tenant.db")
    )

    for _ in range(2):
        with Tenant(config) as tenant:
            channels = [a.channel for a in tenant.authenticators(DEMO_EMAIL)]

    assert channels == ["auth0", "otp", "recovery-code"]


def test_signing_key_file_keeps_tokens_verifiable(
    base_config: TenantConfig, tmp_path: Path, clock: Clock
) -> None:
    """Two tenants loading the same key file publish the same key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = attrs.evolve(base_config, signing_key_file=str(key_file))

    first, second = Tenant(config, clock=clock), Tenant(config, clock=clock)
    token = first.signing_key.sign({"sub": "someone"})

    assert first.jwks() == second.jwks()
    assert first.jwks() != Tenant(base_config, clock=clock).jwks()
    assert second.signing_key.verify(token) == {"sub": "someone"}


def test_unreadable_signing_key_file_is_a_clear_error(
    base_config: TenantConfig, tmp_path: Path
) -> None:
    """A key file that is missing or not a key fails with a message naming it."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")

    with pytest.raises(TenantSetupError, match=r"garbage\.pem"):
        Tenant(attrs.evolve(base_config, signing_key_file=str(garbage)))
    with pytest.raises(TenantSetupError, match=r"missing\.pem"):
        Tenant(
            attrs.evolve(base_config, signing_key_file=str(tmp_path / "missing.pem"))
        )


def test_sqlite_store_round_trips_records(tmp_path: Path) -> None:
    """The SQLite store returns what was put, in insertion order, after reopening."""
    store = SQLiteStore(tmp_path / "state.db")
    user = User("auth0|1", "Someone@Example.test", "scrypt$10$8$1$c2FsdA$a2V5")
    store.put_user(user)
    store.put_authenticator(
        Authenticator("sms|dev_1", user.id, "oob", oob_channel="sms")
    )
    store.put_authenticator(Authenticator("totp|dev_2", user.id, "otp", secret="ABC"))
    store.put_authenticator(attrs.evolve(store.authenticators(user.id)[0], active=True))
    store.put_note("seeded:user:auth0|1", "no")
    store.put_note("seeded:user:auth0|1", "yes")
    store.close()

    reopened = SQLiteStore(tmp_path / "state.db")
    found = reopened.find_user("someone@example.test")
    listed = reopened.authenticators(user.id)
    reopened.delete_authenticator("totp|dev_2")
    remaining = reopened.authenticators(user.id)
    note, missing = reopened.get_note("seeded:user:auth0|1"), reopened.get_note("x")
    reopened.close()

    assert found == user
    assert [(a.id, a.active) for a in listed] == [
        ("sms|dev_1", True),
        ("totp|dev_2", False),
    ]
    assert listed[1].secret == "ABC"
    assert [a.id for a in remaining] == ["sms|dev_1"]
    assert (note, missing) == ("yes", None)


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _with_configured_otp(base: TenantConfig, state_file: Path) -> TenantConfig:
    """The demo tenant whose user has an OTP app from the configuration, on a file."""
    user = attrs.evolve(
        base.users[0], authenticators=(AuthenticatorConfig("otp", secret=SECRET),)
    )
    return attrs.evolve(base, users=(user,), state_file=str(state_file))


def test_a_deleted_configured_authenticator_stays_deleted(
    base_config: TenantConfig, serve: Serve, tmp_path: Path
) -> None:
    """A configured OTP app deleted through the MFA API is gone after a restart."""
    config = _with_configured_otp(base_config, tmp_path / "tenant.db")
    with serve(config) as first:
        access = first.mfa_api_token(
            SECRET, scope="read:authenticators remove:authenticators"
        )["access_token"]
        [listed] = first.get("mfa/authenticators", token=access).json()
        deleted = first.delete(f"mfa/authenticators/{listed['id']}", token=access)

    with serve(config) as second:
        remaining = second.tenant.authenticators(DEMO_EMAIL)
        login = second.login()

    assert deleted.status_code == 204
    assert remaining == []
    assert login.json()["mfa_requirements"] == {
        "enroll": [{"type": "otp"}, {"type": "phone"}, {"type": "push-notification"}]
    }


def test_a_block_set_through_the_control_surface_survives_a_restart(
    base_config: TenantConfig, serve: Serve, tmp_path: Path
) -> None:
    """Blocking a configured user, then restarting, keeps the block the store holds."""
    config = attrs.evolve(base_config, state_file=str(tmp_path / "tenant.db"))
    with serve(config) as first:
        blocked = first.post("__control/users/block", {"user": DEMO_EMAIL})

    with serve(config) as second:
        login = second.login()
        stored = second.tenant.find_user(DEMO_EMAIL)

    assert blocked.status_code == 200
    assert error_of(login) == (401, "unauthorized", "user is blocked")
    assert stored is not None
    assert stored.blocked


def test_configured_records_are_written_at_the_first_start_only(
    base_config: TenantConfig, tmp_path: Path
) -> None:
    """Once seeded, a configured user's stored record wins over a changed config."""
    path = tmp_path / "tenant.db"
    config = _with_configured_otp(base_config, path)
    with Tenant(config):
        pass
    changed = attrs.evolve(
        config, users=(attrs.evolve(config.users[0], name="Renamed", blocked=True),)
    )

    with Tenant(changed) as second:
        user = second.find_user(DEMO_EMAIL)
        channels = [a.channel for a in second.authenticators(DEMO_EMAIL)]

    assert user is not None
    assert (user.name, user.blocked) == (config.users[0].name, False)
    assert channels == ["otp"]


def _modes(directory: Path) -> dict[str, int]:
    return {
        path.name: stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()
    }


def test_state_file_and_its_journals_are_private(
    base_config: TenantConfig, tmp_path: Path
) -> None:
    """The state file, its rollback journal, WAL and shared memory are mode 0600."""
    path = tmp_path / "state" / "tenant.db"
    path.parent.mkdir()
    with Tenant(attrs.evolve(base_config, state_file=str(path))) as tenant:
        tenant.add_user("other@example.test", "another-password-1")
    # Another connection in the middle of a write shows SQLite's side files.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO notes (name, value) VALUES ('a', 'b')")
    during_write = _modes(path.parent)
    other.execute("ROLLBACK")
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("INSERT INTO notes (name, value) VALUES ('a', 'b')")
    in_wal_mode = _modes(path.parent)
    other.close()

    assert during_write == {"tenant.db": 0o600, "tenant.db-journal": 0o600}
    assert in_wal_mode == {
        "tenant.db": 0o600,
        "tenant.db-wal": 0o600,
        "tenant.db-shm": 0o600,
    }


def test_a_moved_clock_stays_moved_across_a_restart(
    base_config: TenantConfig, tmp_path: Path
) -> None:
    """After advance(422) and a restart, the tenant's time and TOTP go on from there."""
    config = _with_configured_otp(base_config, tmp_path / "tenant.db")
    totp = pyotp.TOTP(SECRET)
    with Tenant(config) as first:
        first.clock.advance(422)
        first.verify_otp(DEMO_EMAIL, totp.at(first.clock.now()))

    with Tenant(config) as second:
        second.clock.advance(30)  # the next TOTP step of the moved time
        accepted = second.verify_otp(DEMO_EMAIL, totp.at(second.clock.now()))
    with Tenant(config) as third:
        offset = third.clock.offset

    assert accepted.channel == "otp"
    assert offset == 452


def test_a_given_clock_is_left_as_it_is(
    base_config: TenantConfig, tmp_path: Path
) -> None:
    """A clock passed to the tenant is the caller's: a restart does not move it."""
    config = attrs.evolve(base_config, state_file=str(tmp_path / "tenant.db"))
    with Tenant(config) as first:
        first.clock.advance(600)
    given = Clock.fixed(1_000_000.0)

    with Tenant(config, clock=given) as second:
        reading = second.clock.now()

    assert reading == 1_000_000.0
