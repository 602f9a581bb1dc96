-- Optional expiry of a Secret Token; NULL never expires.
ALTER TABLE tokens ADD COLUMN expires TEXT;
