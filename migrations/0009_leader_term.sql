-- The publisher's leader term: every instance that takes the leader lock
-- draws the next value, and fences every Redis write with it (with the
-- epoch), so a leader that lost its lock can never write over what a later
-- leader published (runtime bus: `Fence`). A sequence, not a column of the
-- registry row: taking it must not wait on the registry lock writers hold.
CREATE SEQUENCE IF NOT EXISTS leader_term;
