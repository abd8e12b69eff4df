-- SetPayerOrder (B10): the beneficiary's payers placed in the order given.
-- KEYS: 1 beneficiary's views, 2 order outbox
-- ARGV: 1 beneficiary, then the binding ids in the new order
-- Returns 1, or 0 (refused, nothing written) unless they are exactly the ids on the list.
local ids = {unpack(ARGV, 2)}
local now = ids_of(KEYS[1])
if #now ~= #ids then return 0 end
local wanted = {}
for _, id in ipairs(ids) do wanted[id] = true end
for _, id in ipairs(now) do if not wanted[id] then return 0 end end
place_payers(KEYS[1], ids, 1)
changed_order(KEYS[1], KEYS[2], ARGV[1])
return 1
