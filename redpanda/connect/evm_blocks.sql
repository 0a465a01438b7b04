-- The table of redpanda/connect/jdbc-sink-blocks.json: the blocks dataset (topic
-- evm.blocks.<chain_id>, schema schemas/evm_block.avsc), one row per canonical block, keyed
-- by the record key <chain_id>:<number>. A reorganisation at the same height replaces the
-- row; a height the new branch does not reach is deleted by its tombstone.
-- Create it before the sink runs: the sink is set to `schema.evolution = none` because the
-- table it would create itself types a decimal(78,0) (base_fee_per_gas) as numeric(38,0).
-- The record's `extra` (every member of the node's block the schema does not name) is left
-- out by the sink's `dropExtra` transform: the sink binds a map as an hstore literal
-- without escaping the quotes in its values (a JSON array such as `uncles`), which
-- PostgreSQL refuses. Read `extra` from the topic.
CREATE TABLE IF NOT EXISTS evm_blocks (
  "key"                      text PRIMARY KEY,
  "chain_id"                 bigint NOT NULL,
  "number"                   bigint NOT NULL,
  "hash"                     text NOT NULL,
  "parent_hash"              text NOT NULL,
  "timestamp"                timestamp(3) without time zone NOT NULL,
  "miner"                    text NOT NULL,
  "gas_used"                 bigint NOT NULL,
  "gas_limit"                bigint NOT NULL,
  "base_fee_per_gas"         numeric(78, 0),
  "transaction_count"        bigint NOT NULL,
  "logs_bloom"               bytea NOT NULL,
  "state_root"               text NOT NULL,
  "transactions_root"        text NOT NULL,
  "receipts_root"            text NOT NULL,
  "extra_data"               bytea NOT NULL,
  "size"                     bigint,
  "withdrawals_root"         text,
  "blob_gas_used"            bigint,
  "excess_blob_gas"          bigint,
  "parent_beacon_block_root" text
);
