"""Login tokens: signed, expiring, and bound to one org."""

from __future__ import annotations

import time

import jwt
import pytest

from jobyard.api.tokens import TokenError, Tokens
from jobyard.store.accounts import User, split_key

USER = User("u1", "acme", "alice", "a@acme.test", True)


def test_a_token_round_trips_the_principal():
    tokens = Tokens("s" * 32, 600)
    principal = tokens.verify(tokens.issue(USER))
    assert (principal.user_id, principal.org, principal.is_admin) == ("u1", "acme", True)


def test_an_expired_token_is_refused():
    tokens = Tokens("s" * 32, 60)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(tokens.issue(USER, now=time.time() - 61))


def test_a_token_with_altered_claims_is_refused():
    tokens = Tokens("s" * 32, 600)
    forged = jwt.encode(
        {"iss": "jobyard", "sub": "u1", "org": "other", "iat": 1, "exp": 2**40},
        "guess" * 8,
        algorithm="HS256",
    )
    with pytest.raises(TokenError):
        tokens.verify(forged)


def test_unsigned_tokens_are_refused():
    tokens = Tokens("s" * 32, 600)
    unsigned = jwt.encode(
        {"iss": "jobyard", "sub": "u1", "org": "acme", "iat": 1, "exp": 2**40},
        None,
        algorithm="none",
    )
    with pytest.raises(TokenError):
        tokens.verify(unsigned)


@pytest.mark.parametrize("key", ["", "jyk", "jyk__x", "abc_def_ghi", "jyk_a_b_c"])
def test_malformed_keys_do_not_split(key):
    assert split_key(key) is None


def test_a_remembered_token_still_expires():
    tokens = Tokens("s" * 32, 60)
    token = tokens.issue(USER, now=time.time())
    assert tokens.verify(token).user_id == "u1"  # verified, and remembered
    assert tokens.verify(token, now=time.time() + 30).user_id == "u1"
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token, now=time.time() + 61)  # past exp: decoded again, and refused


def test_a_forged_token_is_not_served_from_memory():
    tokens = Tokens("s" * 32, 600)
    token = tokens.issue(USER)
    tokens.verify(token)
    head, body, signature = token.split(".")
    with pytest.raises(TokenError):
        tokens.verify(f"{head}.{body}.{signature[:-2]}xx")
