-- likes.lua: the usual Redis recipe for like buttons: a set of likers per post plus a counter kept beside
-- it so reads are one GET. The counter moves only when SADD/SREM changed the set, which is what keeps a
-- double click from counting twice. Loaded with SCRIPT LOAD, called with EVALSHA.
--
-- KEYS[1] likers   set: users who like the post
-- KEYS[2] count    string: number of likers
-- ARGV[1] add | remove
-- ARGV[2] user
--
-- Reply: { 1 if the set changed else 0, count }, the same shape as dibs' LIKE.ADD / LIKE.REMOVE.

if ARGV[1] == 'add' then
  if redis.call('SADD', KEYS[1], ARGV[2]) == 1 then
    return { 1, redis.call('INCR', KEYS[2]) }
  end
elseif ARGV[1] == 'remove' then
  if redis.call('SREM', KEYS[1], ARGV[2]) == 1 then
    return { 1, redis.call('DECR', KEYS[2]) }
  end
else
  return redis.error_reply('ERR unknown likes operation ' .. tostring(ARGV[1]))
end
return { 0, tonumber(redis.call('GET', KEYS[2]) or '0') }
