-- coupon_issue.lua: the usual Redis recipe for "first K users get a numbered coupon, one each".
-- Loaded with SCRIPT LOAD and called with EVALSHA; the whole script runs atomically, which is what makes
-- the check-then-decrement below safe.
--
-- KEYS[1] remaining   string: coupons left, set to K when the event is created
-- KEYS[2] holders     set: users who got one (the SISMEMBER guard against a second coupon)
-- KEYS[3] numbers     hash: user -> coupon number
-- KEYS[4] issued      string: last coupon number handed out (INCR gives 1..K)
-- ARGV[1] user
-- ARGV[2] request id (a retry carries the same id; with one coupon per user the holders set makes a
--         retry answer ALREADY with the first number, so the id needs no key of its own)
--
-- Reply: { status, number or nil, remaining }, the same shape as dibs' COUPON.ISSUE.

if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  local number = tonumber(redis.call('HGET', KEYS[3], ARGV[1]))
  return { 'ALREADY', number, tonumber(redis.call('GET', KEYS[1]) or '0') }
end
local remaining = tonumber(redis.call('GET', KEYS[1]) or '0')
if remaining <= 0 then
  return { 'SOLDOUT', false, 0 }
end
redis.call('DECR', KEYS[1])
local number = redis.call('INCR', KEYS[4])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], number)
return { 'ISSUED', number, remaining - 1 }
