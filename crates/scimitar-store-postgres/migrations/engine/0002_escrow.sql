-- Escrow: an object whose export failed is kept with its error, how many
-- times it failed and when it is tried next (growing back-off), as JSON
-- (`ObjectState::escrow`); NULL when it is not escrowed.
ALTER TABLE engine_objects ADD COLUMN escrow JSONB;
