-- The table of redpanda/connect/jdbc-sink-erc20-transfer.json: decoded ERC-20 `Transfer`
-- records (topic evm.events.<chain_id>.Transfer), one row per canonical transfer, keyed by
-- the record key. Create it before the sink runs: the sink is set to `schema.evolution =
-- none` because the table it would create itself types `value` (a uint256, Avro decimal of
-- precision 78) as numeric(38,0), where a value above 10**38 overflows and fails its task.
CREATE TABLE IF NOT EXISTS erc20_transfers (
  "key"               text PRIMARY KEY,
  "chain_id"          bigint NOT NULL,
  "block_number"      bigint NOT NULL,
  "block_hash"        text NOT NULL,
  "block_timestamp"   timestamp(3) without time zone NOT NULL,
  "transaction_hash"  text NOT NULL,
  "transaction_index" bigint NOT NULL,
  "log_index"         bigint NOT NULL,
  "address"           text NOT NULL,
  "from"              text NOT NULL,
  "to"                text NOT NULL,
  "value"             numeric(78, 0) NOT NULL
);
