-- The table of redpanda/connect/jdbc-sink-transactions.json: the transactions dataset
-- (topic evm.transactions.<chain_id>, schema schemas/evm_transaction.avsc), one row per
-- transaction of the canonical chain with its receipt's outcome, keyed by the record key
-- <chain_id>:<hash>. A transaction orphaned by a reorganisation is deleted by its
-- tombstone, or replaced when the new branch includes it again.
-- Create it before the sink runs: the sink is set to `schema.evolution = none` because the
-- table it would create itself types a decimal(78,0) (value, the gas prices) as
-- numeric(38,0), where a value above 10**38 overflows and fails its task.
-- The record's `extra` (every member of the node's transaction and receipt the schema does
-- not name: signature, access list, a chain's own fields) is left out by the sink's
-- `dropExtra` transform: the sink binds a map as an hstore literal without escaping the
-- quotes in its values (an access list's JSON), which PostgreSQL refuses. Read `extra`
-- from the topic.
CREATE TABLE IF NOT EXISTS evm_transactions (
  "key"                      text PRIMARY KEY,
  "chain_id"                 bigint NOT NULL,
  "block_number"             bigint NOT NULL,
  "block_hash"               text NOT NULL,
  "block_timestamp"          timestamp(3) without time zone NOT NULL,
  "transaction_index"        bigint NOT NULL,
  "hash"                     text NOT NULL,
  "from"                     text NOT NULL,
  "to"                       text,
  "value"                    numeric(78, 0) NOT NULL,
  "nonce"                    bigint,
  "gas"                      bigint NOT NULL,
  "gas_price"                numeric(78, 0),
  "max_fee_per_gas"          numeric(78, 0),
  "max_priority_fee_per_gas" numeric(78, 0),
  "input"                    bytea NOT NULL,
  "type"                     bigint NOT NULL,
  "status"                   boolean,
  "gas_used"                 bigint NOT NULL,
  "cumulative_gas_used"      bigint NOT NULL,
  "effective_gas_price"      numeric(78, 0),
  "contract_address"         text,
  "logs_count"               bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS evm_transactions_block ON evm_transactions (block_number, transaction_index);
