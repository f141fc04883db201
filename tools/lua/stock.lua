-- stock.lua: the usual Redis recipe for a hot SKU with takes and expiring reservations.
-- Loaded with SCRIPT LOAD, called with EVALSHA; ARGV[1] names the operation. Every call first returns
-- expired holds to the shelf, the sorted set of deadlines making that a range query rather than a scan.
--
-- KEYS[1] available     string: units on the shelf
-- KEYS[2] reserved      string: units held by open reservations
-- KEYS[3] sold          string: units taken or confirmed
-- KEYS[4] holds         hash: reservation id -> quantity, open reservations only
-- KEYS[5] deadlines     sorted set: reservation id scored by its expiry in ms
-- KEYS[6] next id       string: INCR gives reservation ids
-- KEYS[7] outcomes      hash: reservation id -> CONFIRMED | RELEASED | EXPIRED once closed
--
-- take qty              -> { 'OK' | 'SOLDOUT', available }
-- reserve qty ttl-ms    -> { 'OK' | 'SOLDOUT', reservation id or nil, available }
-- confirm id | release id -> 'CONFIRMED' | 'RELEASED' | 'EXPIRED' | 'UNKNOWN'

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
for _, id in ipairs(expired) do
  local quantity = tonumber(redis.call('HGET', KEYS[4], id) or '0')
  redis.call('INCRBY', KEYS[1], quantity)
  redis.call('DECRBY', KEYS[2], quantity)
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('HSET', KEYS[7], id, 'EXPIRED')
end

local operation = ARGV[1]
local available = tonumber(redis.call('GET', KEYS[1]) or '0')

if operation == 'take' or operation == 'reserve' then
  local quantity = tonumber(ARGV[2])
  if available < quantity then
    if operation == 'take' then return { 'SOLDOUT', available } end
    return { 'SOLDOUT', false, available }
  end
  redis.call('DECRBY', KEYS[1], quantity)
  if operation == 'take' then
    redis.call('INCRBY', KEYS[3], quantity)
    return { 'OK', available - quantity }
  end
  local id = tostring(redis.call('INCR', KEYS[6]))
  redis.call('INCRBY', KEYS[2], quantity)
  redis.call('HSET', KEYS[4], id, quantity)
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[3]), id)
  return { 'OK', id, available - quantity }
end

if operation == 'confirm' or operation == 'release' then
  local id = ARGV[2]
  local quantity = redis.call('HGET', KEYS[4], id)
  if not quantity then
    return redis.call('HGET', KEYS[7], id) or 'UNKNOWN'
  end
  quantity = tonumber(quantity)
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('DECRBY', KEYS[2], quantity)
  if operation == 'confirm' then
    redis.call('INCRBY', KEYS[3], quantity)
    redis.call('HSET', KEYS[7], id, 'CONFIRMED')
    return 'CONFIRMED'
  end
  redis.call('INCRBY', KEYS[1], quantity)
  redis.call('HSET', KEYS[7], id, 'RELEASED')
  return 'RELEASED'
end

return redis.error_reply('ERR unknown stock operation ' .. tostring(operation))
