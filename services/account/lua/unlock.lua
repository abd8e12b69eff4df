-- An account's lock released, only if it is the one named: by its fencing token (ARGV 2, the
-- holder and a resolver), or by its owner token (ARGV 3, the recovery loop releasing what an
-- attempt it gave up took). KEYS: 1 the account. Returns 1 if released, else 0.
local a = load(1)
if not a or not a.lock then return '0' end
if (ARGV[2] ~= '' and a.fence == ARGV[2]) or (ARGV[3] ~= '' and a.lock.token == ARGV[3]) then
  redis.call('HSET', KEYS[1], 'lock', '')
  return '1'
end
return '0'
