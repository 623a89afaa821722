//! Direct unit tests of the prefix table, on made-up claims and routes.

use super::slots::Slot;

#[test]
fn a_slot_is_at_most_80_octets() {
    assert!(
        std::mem::size_of::<Slot>() <= 80,
        "{}",
        std::mem::size_of::<Slot>()
    );
}
