/**
 * The one Lua script the shared rates run in Redis: refill a token bucket by Redis' own clock,
 * take up to `want` tokens from it for one replica's lease (and put back what a replica
 * returns), and note the replica as alive. Atomic, so N replicas taking at once never take
 * more than the bucket holds.
 *
 * Refill by Redis TIME, not the caller's clock: replicas' clocks differ (performance.now() is
 * per process, wall clocks drift), and a bucket refilled by whichever caller's clock came last
 * would gain or lose tokens with every skew. One clock, Redis', makes the rate exact.
 * (Redis 7 replicates a script's effects, so TIME inside it is allowed.)
 *
 * KEYS[1] the bucket (a hash: t tokens, a at ms), KEYS[2] the replicas (a sorted set by last seen).
 * ARGV: perSecond, burst, want, giveBack, replicaId, replicaTtlMs.
 * Returns { granted, waitMs (until a token is there, 0 if one is), replicas seen }.
 */
export const LEASE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local perMs = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local back = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * perMs)
  at = now
end
tokens = math.min(burst, tokens + back)
local granted = math.floor(math.min(want, tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'a', tostring(at))
-- A full bucket is what a missing key means: the key lives until it would be full again.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / perMs) + 1000)
local wait = 0
if tokens < 1 then wait = math.ceil((1 - tokens) / perMs) end
local ttl = tonumber(ARGV[6])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
return { granted, wait, redis.call('ZCARD', KEYS[2]) }
`;

export type LeaseReply = [granted: number, waitMs: number, replicas: number];
