--[[
Redeem one code. A script runs alone on the Redis server, so the checks and the writes below are atomic;
with `appendfsync always` its writes are in the fsynced append-only file before the reply goes out.

KEYS[1]  idem:<terminalId>:<key>        string: the JSON answer of an approved redeem (expires after a day)
KEYS[2]  code:<merchantId>:<codeHash>   hash: consumer, state ('live' | 'redeemed'), capCents, expiresAtMs
KEYS[3]  journal                       stream: one entry per approved redeem, debit and credit account
ARGV[1]  merchantId
ARGV[2]  amountCents
ARGV[3]  authId (random, made by the caller)
ARGV[4]  idempotency TTL in seconds

The card, card:<consumerId>:<merchantId> (string: balance in cents), is known only once the code is read,
so the script names it itself: fine on one server; Redis Cluster would need the keys under one hash tag.

Returns the answer as JSON: {"status", "approvedCents"[, "authId", "balanceCents"]}.
]]

local function decline(status)
  return cjson.encode({ status = status, approvedCents = 0 })
end

-- A retry with a key already answered gets the stored answer.
local stored = redis.call('GET', KEYS[1])
if stored then return stored end

local code = redis.call('HMGET', KEYS[2], 'state', 'consumer', 'capCents', 'expiresAtMs')
local state, consumer = code[1], code[2]
if state ~= 'live' then return decline('invalid_code') end

local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if nowMs >= tonumber(code[4]) then return decline('expired_code') end

local amount = tonumber(ARGV[2])
if amount > tonumber(code[3]) then return decline('over_cap') end

local card = 'card:' .. consumer .. ':' .. ARGV[1]
local balance = tonumber(redis.call('GET', card))
if not balance or balance < amount then return decline('insufficient_funds') end

balance = redis.call('DECRBY', card, amount)
redis.call('HSET', KEYS[2], 'state', 'redeemed', 'authId', ARGV[3])
redis.call('XADD', KEYS[3], '*',
  'authId', ARGV[3], 'debit', card, 'credit', 'merchant:' .. ARGV[1], 'amountCents', amount)
local answer = cjson.encode({
  status = 'approved', authId = ARGV[3], approvedCents = amount, balanceCents = balance,
})
redis.call('SET', KEYS[1], answer, 'EX', ARGV[4])
return answer
