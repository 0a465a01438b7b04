//! Per-partition offsets of a chain topic: a handful of entries, sorted by partition.

/// One offset per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offsets(Vec<(i32, i64)>);

impl Offsets {
    /// Keeps the smaller of the stored offset and `offset` for `partition`.
    pub fn lower(&mut self, partition: i32, offset: i64) {
        self.update(partition, offset, i64::min);
    }

    /// Keeps the larger of the stored offset and `offset` for `partition`.
    pub fn raise(&mut self, partition: i32, offset: i64) {
        self.update(partition, offset, i64::max);
    }

    fn update(&mut self, partition: i32, offset: i64, pick: fn(i64, i64) -> i64) {
        match self.0.binary_search_by_key(&partition, |e| e.0) {
            Ok(i) => self.0[i].1 = pick(self.0[i].1, offset),
            Err(i) => self.0.insert(i, (partition, offset)),
        }
    }

    /// Lowers every offset to `other`'s where it is smaller.
    pub fn lower_all(&mut self, other: &Offsets) {
        for &(p, o) in &other.0 {
            self.lower(p, o);
        }
    }

    /// The offset stored for `partition`.
    pub fn get(&self, partition: i32) -> Option<i64> {
        self.0
            .binary_search_by_key(&partition, |e| e.0)
            .ok()
            .map(|i| self.0[i].1)
    }

    /// `(partition, offset)` pairs, by partition.
    pub fn iter(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.0.iter().copied()
    }

    /// Whether no partition is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Offsets;

    #[test]
    fn keeps_the_lowest_or_highest_per_partition() {
        let mut o = Offsets::default();
        o.lower(2, 50);
        o.lower(0, 9);
        o.lower(2, 40);
        o.lower(2, 45);
        assert_eq!(o.iter().collect::<Vec<_>>(), [(0, 9), (2, 40)]);
        o.raise(0, 3);
        o.raise(1, 7);
        assert_eq!(o.iter().collect::<Vec<_>>(), [(0, 9), (1, 7), (2, 40)]);
        let mut other = Offsets::default();
        other.lower(0, 1);
        o.lower_all(&other);
        assert_eq!(o.get(0), Some(1));
        assert_eq!(o.get(5), None);
    }
}
