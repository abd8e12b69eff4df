-- A binding's end, both people in one province: an ACTIVE binding ended and the gap in the
-- payer order closed (B10, B11), or one awaiting consent ended (it was never a payer); its grant
-- marked to be revoked (Lifecycle.revokes). Any other state is returned unchanged.
-- KEYS: 1 record, 2 binder's views, 3 beneficiary's views, 4 order outbox, 5 consent due,
--       6 revokes due
-- ARGV: 1 binding id, 2 new status (REMOVED or LAPSED), 3 ended ms, 4 beneficiary, 5 which
--       ('any' or 'pending', as lib.lua `end_binder_side`), 6 the time of the mark (ms)
-- Returns the record JSON, or '' when there is no such binding.
local raw, ended, was = end_binder_side(KEYS[1], KEYS[2], KEYS[6], ARGV[1], ARGV[4], ARGV[2],
                                        ARGV[3], ARGV[5], ARGV[6])
if ended then
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('HDEL', KEYS[3], 'w:' .. ARGV[1])
  if was == BINDING_STATUS_ACTIVE then
    drop_payer(KEYS[3], ARGV[1])
    changed_order(KEYS[3], KEYS[4], ARGV[4])
  end
end
return raw
