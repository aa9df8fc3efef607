-- The redeem schema "the way most teams would" write it: one row per code, per card, per journal leg and
-- per idempotency key, each table keyed by what the redeem looks it up by.

-- One-time codes. A code is stored only as its hash: hex HMAC-SHA256 of `${merchant_id}|${code}` under a
-- server key, so a leaked table does not leak spendable codes. Looked up by (merchant, hash).
CREATE TABLE codes (
  merchant_id  text        NOT NULL,
  code_hash    text        NOT NULL,
  consumer_id  text        NOT NULL,
  state        text        NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'redeemed', 'cancelled')),
  cap_cents    bigint      NOT NULL CHECK (cap_cents > 0),
  expires_at   timestamptz NOT NULL,
  auth_id      text,                      -- set when redeemed
  PRIMARY KEY (merchant_id, code_hash)
);

-- Prepaid cards: one per consumer and merchant, spendable only at that merchant.
CREATE TABLE cards (
  consumer_id    text   NOT NULL,
  merchant_id    text   NOT NULL,
  balance_cents  bigint NOT NULL CHECK (balance_cents >= 0),
  PRIMARY KEY (consumer_id, merchant_id)
);

-- Double-entry journal: every approved redeem writes two legs that sum to zero, the card's debit
-- (negative) and the merchant's credit (positive), both under the redeem's auth id.
CREATE TABLE journal (
  auth_id       text        NOT NULL,
  account       text        NOT NULL,     -- 'card:<consumer>:<merchant>' or 'merchant:<merchant>'
  amount_cents  bigint      NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (auth_id, account)
);

-- The answer of every approved redeem, by terminal and idempotency key: a retry with the same key gets
-- the same answer instead of a second debit.
CREATE TABLE idempotency (
  terminal_id  text        NOT NULL,
  key          text        NOT NULL,
  result       jsonb       NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (terminal_id, key)
);
