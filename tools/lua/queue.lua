-- queue.lua: the usual Redis recipe for a waiting room: a sorted set scored by a ticket number from
-- INCR (first come, first served), ZRANK for the position, ZPOPMIN to admit, and a hash of passes with
-- their expiry so an admitted user can be told "0: your turn". Loaded with SCRIPT LOAD, called with
-- EVALSHA; ARGV[1] names the operation.
--
-- KEYS[1] line     sorted set: waiting users scored by ticket
-- KEYS[2] tickets  string: the last ticket handed out
-- KEYS[3] passes   hash: admitted user -> pass expiry in ms
--
-- join user            -> position (1 = next), 0 if the user holds a valid pass; joining twice keeps the
--                         first ticket
-- position user        -> position, 0 with a valid pass, nil if unknown
-- admit n pass-ttl-ms  -> the admitted users, in order
-- length               -> waiting count

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local operation = ARGV[1]

local function position(user)
  local expiry = redis.call('HGET', KEYS[3], user)
  if expiry and tonumber(expiry) > now then
    return 0
  end
  local rank = redis.call('ZRANK', KEYS[1], user)
  if rank then
    return rank + 1
  end
  return nil
end

if operation == 'join' then
  local found = position(ARGV[2])
  if found then
    return found
  end
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[2])
  return redis.call('ZCARD', KEYS[1])
elseif operation == 'position' then
  return position(ARGV[2]) or false
elseif operation == 'admit' then
  local popped = redis.call('ZPOPMIN', KEYS[1], tonumber(ARGV[2]))
  local admitted = {}
  for index = 1, #popped, 2 do
    redis.call('HSET', KEYS[3], popped[index], now + tonumber(ARGV[3]))
    admitted[#admitted + 1] = popped[index]
  end
  return admitted
elseif operation == 'length' then
  return redis.call('ZCARD', KEYS[1])
end
return redis.error_reply('ERR unknown queue operation ' .. tostring(operation))
