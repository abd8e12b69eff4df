-- A binding id whose creation was given up (its grant written, the binding never made): marked
-- void so that no late attempt makes it after its grant is revoked (Lifecycle.grants).
-- KEYS: 1 record, 2 void mark
-- ARGV: 1 TTL s
-- Returns 'void', or 'made' when the binding exists (nothing written).
if redis.call('EXISTS', KEYS[1]) == 1 then return 'made' end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return 'void'
