"""Schemas of the wallet-connection endpoints (challenge, connect, disconnect)."""

from __future__ import annotations

import marshmallow as ma

from app.api.schemas import StrictSchema, Text

# Generous bounds: the service decides what is a valid address or signature (invalid_address,
# invalid_signature); these only keep absurd inputs out.
ADDRESS_MAX = 128
SIGNATURE_MAX = 256
SIGNED_MESSAGE_MAX = 2048


class ChallengeRequestSchema(StrictSchema):
    wallet_address = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=ADDRESS_MAX),
        metadata={"description": "base58 public key, optionally prefixed `sol:`"},
    )


class ChallengeResponseSchema(ma.Schema):
    message = ma.fields.String(metadata={"description": "Sign these exact UTF-8 bytes."})
    nonce = ma.fields.String()
    expires_at = ma.fields.DateTime()


class ConnectRequestSchema(ChallengeRequestSchema):
    signature = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=SIGNATURE_MAX),
        metadata={"description": "ed25519 signature of the challenge message, base58 or base64"},
    )
    signed_message = Text(
        validate=ma.validate.Length(min=1, max=SIGNED_MESSAGE_MAX),
        metadata={
            "description": "What the wallet reports it signed (Wallet Standard `signedMessage`): "
            "the challenge text, or its UTF-8 bytes in base64. When sent it must be exactly the "
            "issued challenge (400 `signed_message_mismatch`)."
        },
    )


class ConnectResponseSchema(ma.Schema):
    success = ma.fields.Boolean()
    message = ma.fields.String()
    wallet_id = ma.fields.UUID()
    address = ma.fields.String()


class DisconnectRequestSchema(StrictSchema):
    wallet_id = ma.fields.UUID(required=True)


class DisconnectResponseSchema(ma.Schema):
    success = ma.fields.Boolean()
    message = ma.fields.String()
