-- The canonical Redis recipe for issuing one coupon atomically, for comparing dibs's COUPON.ISSUE with
-- what a Redis deployment runs today (see docs/coupons-stock.md, "Benchmark").
--
-- KEYS[1]  the set of users who hold a coupon of the event
-- KEYS[2]  coupons remaining: a counter set to the event's total beforehand (SET ev:remaining <total>)
-- KEYS[3]  the last coupon number handed out (absent means 0)
-- ARGV[1]  the user
--
-- Returns {status, number, remaining} like COUPON.ISSUE: status ISSUED, ALREADY or SOLDOUT; number is
-- nil except for ISSUED (the recipe keeps no user -> number map, so ALREADY cannot name the number).
--
-- Load it with:   redis-cli SCRIPT LOAD "$(cat tools/lua/coupon_issue.lua)"
-- Call it with:   EVALSHA <sha> 3 ev:users ev:remaining ev:issued <user>

if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return {'ALREADY', false, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local remaining = tonumber(redis.call('GET', KEYS[2]) or '0')
if remaining <= 0 then
  return {'SOLDOUT', false, 0}
end
remaining = redis.call('DECR', KEYS[2])
redis.call('SADD', KEYS[1], ARGV[1])
local number = redis.call('INCR', KEYS[3])
return {'ISSUED', number, remaining}
