//! The values of the `blocks` and `transactions` datasets, framed like the logs' (single
//! object, or a registry's id).

use apache_avro::Schema;

use crate::rpc::body::{BlockFields, TxFields};
use crate::rpc::outcome::ReceiptFields;

use super::block::BLOCK_SCHEMA_JSON;
use super::transaction::TRANSACTION_SCHEMA_JSON;
use super::{EncodeError, Framing, header};

/// Encodes `EvmBlock` and `EvmTransaction` values (one per chain).
#[derive(Debug, Clone)]
pub struct DatasetEncoder {
    block_header: Vec<u8>,
    tx_header: Vec<u8>,
}

impl DatasetEncoder {
    /// Values of the blocks topic framed as `blocks`, of the transactions topic as `txs`.
    /// Fails if an embedded schema does not parse.
    pub fn new(blocks: Framing, txs: Framing) -> Result<Self, EncodeError> {
        for text in [BLOCK_SCHEMA_JSON, TRANSACTION_SCHEMA_JSON] {
            Schema::parse_str(text).map_err(|e| EncodeError::Schema(e.to_string()))?;
        }
        Ok(Self {
            block_header: header(BLOCK_SCHEMA_JSON, blocks)?,
            tx_header: header(TRANSACTION_SCHEMA_JSON, txs)?,
        })
    }

    /// The value of block `b` on chain `chain_id`.
    pub fn block(&self, chain_id: u64, b: &BlockFields) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.block_header.len() + 800);
        out.extend_from_slice(&self.block_header);
        super::block::write(&mut out, chain_id, b);
        out
    }

    /// The value of transaction `tx` of `block`, with its receipt's `receipt`.
    pub fn transaction(
        &self,
        chain_id: u64,
        block: &BlockFields,
        tx: &TxFields,
        receipt: &ReceiptFields,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.tx_header.len() + 400 + tx.input.len());
        out.extend_from_slice(&self.tx_header);
        super::transaction::write(&mut out, chain_id, block, tx, receipt);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::body::Body;
    use alloy_primitives::U256;
    use apache_avro::types::Value;

    fn decode(schema_json: &str, value: &[u8]) -> Vec<(String, Value)> {
        let schema = Schema::parse_str(schema_json).expect("schema");
        let mut body = &value[10..];
        match apache_avro::from_avro_datum(&schema, &mut body, None).expect("decodes") {
            Value::Record(fields) => {
                assert!(body.is_empty(), "no bytes left over");
                fields
            }
            other => panic!("not a record: {other:?}"),
        }
    }

    fn field<'a>(fields: &'a [(String, Value)], name: &str) -> &'a Value {
        &fields.iter().find(|(n, _)| n == name).expect(name).1
    }

    fn unwrap_union(v: &Value) -> &Value {
        match v {
            Value::Union(_, inner) => inner,
            other => other,
        }
    }

    #[test]
    fn apache_avro_reads_what_is_written() {
        let json = serde_json::json!({
            "number": "0x10", "hash": format!("0x{}", "ab".repeat(32)),
            "parentHash": format!("0x{}", "01".repeat(32)), "timestamp": "0x5",
            "miner": format!("0x{}", "02".repeat(20)), "gasUsed": "0x5208",
            "gasLimit": "0x1c9c380", "logsBloom": format!("0x{}", "00".repeat(256)),
            "stateRoot": format!("0x{}", "03".repeat(32)),
            "transactionsRoot": format!("0x{}", "04".repeat(32)),
            "receiptsRoot": format!("0x{}", "05".repeat(32)), "extraData": "0xbeef",
            "baseFeePerGas": "0xff", "size": "0x220", "sendRoot": "0x77",
            "transactions": [{
                "hash": format!("0x{}", "06".repeat(32)), "transactionIndex": "0x0",
                "from": format!("0x{}", "07".repeat(20)), "to": format!("0x{}", "08".repeat(20)),
                "value": format!("0x{}", "f".repeat(64)), "gas": "0x5208", "nonce": "0x3",
                "gasPrice": "0x80", "input": "0x6001", "type": "0x2", "v": "0x1",
            }],
        })
        .to_string();
        let body = Body::parse(&json, true).expect("valid");
        let receipt = ReceiptFields::read(&serde_json::json!({
            "status": "0x1", "gasUsed": "0x5208", "cumulativeGasUsed": "0x5208",
            "contractAddress": null, "logs": [{}], "l1Fee": "0x9", "v": "0x2",
        }))
        .expect("valid");
        let enc = DatasetEncoder::new(Framing::SingleObject, Framing::SingleObject).expect("enc");
        let b = decode(BLOCK_SCHEMA_JSON, &enc.block(7, &body.block));
        assert_eq!(field(&b, "chain_id"), &Value::Long(7));
        assert_eq!(field(&b, "timestamp"), &Value::TimestampMillis(5000));
        assert_eq!(
            field(&b, "hash"),
            &Value::String(format!("0x{}", "ab".repeat(32)))
        );
        assert_eq!(field(&b, "extra_data"), &Value::Bytes(vec![0xbe, 0xef]));
        assert_eq!(unwrap_union(field(&b, "size")), &Value::Long(0x220));
        assert_eq!(unwrap_union(field(&b, "withdrawals_root")), &Value::Null);
        match unwrap_union(field(&b, "base_fee_per_gas")) {
            Value::Decimal(d) => {
                let bytes: Vec<u8> = d.try_into().expect("bytes");
                assert_eq!(bytes, [0x00, 0xff], "positive: a sign byte");
            }
            other => panic!("{other:?}"),
        }
        let tx = &body.transactions[0];
        let t = decode(
            TRANSACTION_SCHEMA_JSON,
            &enc.transaction(7, &body.block, tx, &receipt),
        );
        assert_eq!(field(&t, "block_number"), &Value::Long(16));
        assert_eq!(unwrap_union(field(&t, "nonce")), &Value::Long(3));
        assert_eq!(unwrap_union(field(&t, "status")), &Value::Boolean(true));
        assert_eq!(field(&t, "logs_count"), &Value::Long(1));
        match field(&t, "value") {
            Value::Decimal(d) => {
                let bytes: Vec<u8> = d.try_into().expect("bytes");
                assert_eq!(bytes.len(), 33);
                assert_eq!(U256::from_be_slice(&bytes[1..]), U256::MAX);
            }
            other => panic!("{other:?}"),
        }
        match field(&t, "extra") {
            Value::Map(m) => {
                assert_eq!(m["v"], Value::String("0x1".into()));
                assert_eq!(m["receipt.v"], Value::String("0x2".into()));
                assert_eq!(m["l1Fee"], Value::String("0x9".into()));
                assert_eq!(m.len(), 3);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            super::super::peek::peek_block(&enc.transaction(7, &body.block, tx, &receipt)),
            Some((7, 16, body.block.hash)),
            "start-up reads a transaction's block like a log's"
        );
    }
}
