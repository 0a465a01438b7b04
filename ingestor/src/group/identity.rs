//! This member's generation and member id, as the coordinator gave them. rdkafka exposes
//! the consumer group metadata only as an opaque value for `send_offsets_to_transaction`;
//! librdkafka's own serialisation of it (`rd_kafka_consumer_group_metadata_write`) holds
//! both: `"CGMDv2:"`, the generation (`i32`, native order), then the group id and the
//! member id, each NUL-terminated.

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

const MAGIC: &[u8] = b"CGMDv2:";

/// The member's `(generation, member id)`; `None` before it joined.
pub fn identity<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<(i32, String)> {
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is the live consumer's handle. The metadata is destroyed, and the buffer
    // freed with librdkafka's allocator, before returning; the buffer is copied first.
    let bytes = unsafe {
        let cgmd = rd::rd_kafka_consumer_group_metadata(rk);
        if cgmd.is_null() {
            return None;
        }
        let mut buf: *mut std::ffi::c_void = std::ptr::null_mut();
        let mut size = 0usize;
        let err = rd::rd_kafka_consumer_group_metadata_write(cgmd, &mut buf, &mut size);
        rd::rd_kafka_consumer_group_metadata_destroy(cgmd);
        if !err.is_null() {
            rd::rd_kafka_error_destroy(err);
            return None;
        }
        if buf.is_null() {
            return None;
        }
        let copy = std::slice::from_raw_parts(buf as *const u8, size).to_vec();
        rd::rd_kafka_mem_free(rk, buf);
        copy
    };
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Option<(i32, String)> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let generation = i32::from_ne_bytes(rest.get(..4)?.try_into().ok()?);
    let mut strings = rest.get(4..)?.split(|b| *b == 0);
    let _group = strings.next()?;
    let member = String::from_utf8(strings.next()?.to_vec()).ok()?;
    Some((generation, member))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serialised_metadata_gives_generation_and_member() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&7i32.to_ne_bytes());
        b.extend_from_slice(b"grp\0rdkafka-1234\0\x01");
        assert_eq!(parse(&b), Some((7, "rdkafka-1234".into())));
        assert_eq!(parse(b"CGMDv1:"), None);
    }
}
