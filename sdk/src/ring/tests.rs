//! Host tests of the ring: behaviour against a model, a vandal peer, real threads, and the
//! blocking variants against the fake kernel's notifications.

extern crate std;

use super::*;
use crate::host::{set_peer, with};
use std::boxed::Box;
use std::collections::VecDeque;
use std::sync::Arc;
use std::vec::Vec;

/// A zeroed fake region of `words` words.
fn region(words: usize) -> Vec<AtomicU64> {
    (0..words).map(|_| AtomicU64::new(0)).collect()
}

/// A zeroed fake region that lives for the rest of the test process.
fn leaked_region(words: usize) -> &'static [AtomicU64] {
    Box::leak(region(words).into_boxed_slice())
}

/// A xorshift64 generator: the randomized tests need no dependency and are reproducible.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

const DOORBELLS: Doorbells = Doorbells {
    data_ready: Notification::new(1),
    space_free: Notification::new(2),
};

#[test]
fn capacity_comes_from_the_region_size() {
    let words = region(HEADER_WORDS + 10);
    assert_eq!(Ring::<u64>::new(&words).unwrap().capacity(), 10);
    assert_eq!(Ring::<[u64; 3]>::new(&words).unwrap().capacity(), 3);
    assert_eq!(Ring::<[u64; 8]>::new(&words).unwrap().capacity(), 1);
    let words = region(HEADER_WORDS + 7);
    assert_eq!(
        Ring::<[u64; 8]>::new(&words).unwrap_err(),
        RingError::TooSmall
    );
    assert_eq!(
        Ring::<u64>::new(&region(HEADER_WORDS)).unwrap_err(),
        RingError::TooSmall
    );
    assert_eq!(
        Ring::<u64>::new(&region(3)).unwrap_err(),
        RingError::TooSmall
    );
}

#[test]
fn items_come_out_in_order_until_full_and_wrap_around() {
    let words = region(HEADER_WORDS + 3 * 5);
    let ring = Ring::<[u64; 3]>::new(&words).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    for round in 0..40 {
        let batch = 1 + round % 5;
        for _ in 0..batch {
            producer.push([next_in, !next_in, next_in * 3]).unwrap();
            next_in += 1;
        }
        if batch == 5 {
            assert_eq!(producer.push([0; 3]), Err(RingError::Full));
        }
        while let Some(item) = consumer.pop().unwrap() {
            assert_eq!(item, [next_out, !next_out, next_out * 3]);
            next_out += 1;
        }
    }
    assert_eq!(next_in, next_out);
    assert_eq!(words[PRODUCER_INDEX].load(Ordering::Relaxed), next_in);
    assert_eq!(words[CONSUMER_INDEX].load(Ordering::Relaxed), next_out);
}

#[test]
fn indices_wrap_at_two_to_the_sixty_four() {
    let words = region(HEADER_WORDS + 3);
    words[PRODUCER_INDEX].store(u64::MAX - 1, Ordering::Relaxed);
    words[CONSUMER_INDEX].store(u64::MAX - 1, Ordering::Relaxed);
    let ring = Ring::<u32>::new(&words).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    for value in 0..20u32 {
        producer.push(value).unwrap();
        assert_eq!(consumer.pop(), Ok(Some(value)));
    }
    assert_eq!(words[PRODUCER_INDEX].load(Ordering::Relaxed), 18);
}

#[test]
fn sides_resume_from_the_indices_in_the_region() {
    let words = region(HEADER_WORDS + 4);
    let ring = Ring::<u64>::new(&words).unwrap();
    let mut producer = ring.producer().unwrap();
    producer.push(7).unwrap();
    producer.push(8).unwrap();
    let mut consumer = ring.consumer().unwrap();
    assert_eq!(consumer.pop(), Ok(Some(7)));
    // A restarted consumer continues after what was popped.
    let mut consumer = ring.consumer().unwrap();
    assert_eq!(consumer.pop(), Ok(Some(8)));
    assert_eq!(consumer.pop(), Ok(None));
    words[PRODUCER_INDEX].store(1000, Ordering::Relaxed);
    assert_eq!(ring.consumer().unwrap_err(), RingError::Corrupt);
    assert_eq!(ring.producer().unwrap_err(), RingError::Corrupt);
}

#[test]
fn narrow_items_keep_the_low_bits_of_whatever_the_peer_wrote() {
    let words = region(HEADER_WORDS + 2);
    let ring = Ring::<i8>::new(&words).unwrap();
    let mut consumer = ring.consumer().unwrap();
    words[HEADER_WORDS].store(0xffff_ffff_ffff_ff80, Ordering::Relaxed);
    words[PRODUCER_INDEX].store(1, Ordering::Release);
    assert_eq!(consumer.pop(), Ok(Some(-128)));
}

#[test]
fn a_producer_index_out_of_range_poisons_the_consumer() {
    for garbage in [u64::MAX, 1 << 40, 7, 0x8000_0000_0000_0000] {
        let words = region(HEADER_WORDS + 5);
        let ring = Ring::<u64>::new(&words).unwrap();
        let mut producer = ring.producer().unwrap();
        let mut consumer = ring.consumer().unwrap();
        producer.push(1).unwrap();
        assert_eq!(consumer.pop(), Ok(Some(1)));
        words[PRODUCER_INDEX].store(garbage, Ordering::Relaxed);
        assert_eq!(consumer.pop(), Err(RingError::Corrupt), "{garbage:#x}");
        // Poisoned: even a repaired index is not trusted again.
        words[PRODUCER_INDEX].store(1, Ordering::Relaxed);
        assert_eq!(consumer.pop(), Err(RingError::Corrupt));
    }
}

#[test]
fn a_producer_index_moving_backwards_poisons_the_consumer() {
    let words = region(HEADER_WORDS + 8);
    let ring = Ring::<u64>::new(&words).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    for value in 0..4 {
        producer.push(value).unwrap();
    }
    assert_eq!(consumer.pop(), Ok(Some(0)));
    // The consumer has seen head = 4; a head of 2 is within range of its tail (1) but
    // takes back items already published.
    words[PRODUCER_INDEX].store(2, Ordering::Relaxed);
    for value in 1..4 {
        assert_eq!(consumer.pop(), Ok(Some(value)));
    }
    assert_eq!(consumer.pop(), Err(RingError::Corrupt));
}

#[test]
fn a_consumer_index_out_of_range_poisons_the_producer() {
    for garbage in [u64::MAX, 1 << 33, 5, 3] {
        let words = region(HEADER_WORDS + 2);
        let ring = Ring::<u64>::new(&words).unwrap();
        let mut producer = ring.producer().unwrap();
        let mut consumer = ring.consumer().unwrap();
        for value in 0..2 {
            producer.push(value).unwrap();
        }
        assert_eq!(consumer.pop(), Ok(Some(0)));
        assert_eq!(consumer.pop(), Ok(Some(1)));
        producer.push(2).unwrap();
        producer.push(3).unwrap();
        // Head is 4 and the last tail the producer saw is 2: a valid tail is 2..=4.
        words[CONSUMER_INDEX].store(garbage, Ordering::Relaxed);
        let expected = if (2..=4).contains(&garbage) {
            Ok(())
        } else {
            Err(RingError::Corrupt)
        };
        assert_eq!(producer.push(4).map_err(|_| RingError::Corrupt), expected);
    }
}

/// Runs random pushes and pops against a `VecDeque`, while a vandal writes random values
/// into both indices at random moments: nothing panics or reads outside the region, every
/// error is `Corrupt` (or `Full` exactly when the model is full), and until the first
/// corruption every popped item is the model's.
#[test]
fn randomized_against_a_model_with_a_vandal() {
    for seed in 1..=300u64 {
        let mut random = Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let capacity = 1 + random.below(9) as usize;
        let words = region(HEADER_WORDS + capacity * 2);
        let ring = Ring::<[u64; 2]>::new(&words).unwrap();
        let mut producer = ring.producer().unwrap();
        let mut consumer = ring.consumer().unwrap();
        let mut model = VecDeque::new();
        let mut vandalized = false;
        let vandal_rate = random.below(3);
        for step in 0..400u64 {
            if vandal_rate != 0 && random.below(100) < vandal_rate {
                let word = if random.below(2) == 0 {
                    PRODUCER_INDEX
                } else {
                    CONSUMER_INDEX
                };
                let value = match random.below(3) {
                    0 => random.next(),
                    1 => words[word]
                        .load(Ordering::Relaxed)
                        .wrapping_add(random.below(5)),
                    _ => words[word]
                        .load(Ordering::Relaxed)
                        .wrapping_sub(random.below(5)),
                };
                words[word].store(value, Ordering::Relaxed);
                vandalized = true;
            }
            if random.below(2) == 0 {
                let item = [step, seed];
                match producer.push(item) {
                    Ok(()) => model.push_back(item),
                    Err(RingError::Full) => {
                        assert!(vandalized || model.len() == capacity, "seed {seed}")
                    }
                    Err(error) => assert_eq!((error, vandalized), (RingError::Corrupt, true)),
                }
            } else {
                match consumer.pop() {
                    Ok(Some(item)) if !vandalized => {
                        assert_eq!(Some(item), model.pop_front(), "seed {seed}")
                    }
                    Ok(None) => assert!(vandalized || model.is_empty(), "seed {seed}"),
                    Ok(Some(_)) => {}
                    Err(error) => assert_eq!((error, vandalized), (RingError::Corrupt, true)),
                }
            }
        }
    }
}

/// A producer and a consumer on two threads, spinning: every item arrives once, in order.
#[test]
fn concurrent_threads_transfer_every_item_in_order() {
    const ITEMS: u64 = 200_000;
    let words: Arc<Vec<AtomicU64>> = Arc::new(region(HEADER_WORDS + 2 * 7));
    let producer_words = Arc::clone(&words);
    let producer = std::thread::spawn(move || {
        let mut producer = Ring::<[u64; 2]>::new(&producer_words)
            .unwrap()
            .producer()
            .unwrap();
        for value in 0..ITEMS {
            loop {
                match producer.push([value, value.wrapping_mul(0x9e37_79b9)]) {
                    Ok(()) => break,
                    Err(RingError::Full) => std::thread::yield_now(),
                    Err(error) => panic!("producer: {error:?}"),
                }
            }
        }
    });
    let mut consumer = Ring::<[u64; 2]>::new(&words).unwrap().consumer().unwrap();
    let mut expected = 0;
    while expected < ITEMS {
        match consumer.pop().unwrap() {
            Some(item) => {
                assert_eq!(item, [expected, expected.wrapping_mul(0x9e37_79b9)]);
                expected += 1;
            }
            None => std::thread::yield_now(),
        }
    }
    producer.join().unwrap();
    assert_eq!(consumer.pop(), Ok(None));
}

#[test]
fn a_blocking_push_waits_for_space_and_the_consumer_wakes_it_at_half_empty() {
    let words = leaked_region(HEADER_WORDS + 4);
    let ring = Ring::<u64>::new(words).unwrap();
    let mut producer = ring.producer().unwrap();
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let peer_received = Arc::clone(&received);
    let mut peer_consumer = ring.consumer().unwrap();
    // The peer stands in for the consumer cell: it pops two items per turn, each through
    // `pop_blocking`, which signals space_free once half the ring is free.
    set_peer(move || {
        for _ in 0..2 {
            let item = peer_consumer.pop_blocking(&DOORBELLS).unwrap();
            peer_received.lock().unwrap().push(item);
        }
    });
    for value in 0..30 {
        producer.push_blocking(value, &DOORBELLS).unwrap();
    }
    let mut consumer = ring.consumer().unwrap();
    let mut all = received.lock().unwrap().clone();
    while let Some(item) = consumer.pop().unwrap() {
        all.push(item);
    }
    assert_eq!(all, (0..30).collect::<Vec<_>>());
    // The producer waited only when the ring was full, and was woken each time.
    with(|kernel| {
        let waits = kernel
            .calls
            .iter()
            .filter(|(number, arguments)| *number == abi::hvc::WAIT && arguments[0] == 2)
            .count();
        let wakes = kernel
            .calls
            .iter()
            .filter(|(number, arguments)| *number == abi::hvc::SIGNAL && arguments[0] == 2)
            .count();
        assert_eq!(waits, 13);
        assert_eq!(wakes, waits);
        assert_eq!(words[PRODUCER_WAITING].load(Ordering::Relaxed), 0);
    });
}

#[test]
fn a_blocking_pop_waits_for_data_and_the_producer_wakes_it() {
    let words = leaked_region(HEADER_WORDS + 4);
    let ring = Ring::<u64>::new(words).unwrap();
    let mut consumer = ring.consumer().unwrap();
    let mut peer_producer = ring.producer().unwrap();
    let mut next = 100;
    set_peer(move || {
        peer_producer.push_blocking(next, &DOORBELLS).unwrap();
        next += 1;
    });
    for expected in 100..110 {
        assert_eq!(consumer.pop_blocking(&DOORBELLS), Ok(expected));
    }
    assert_eq!(words[CONSUMER_WAITING].load(Ordering::Relaxed), 0);
    with(|kernel| assert_eq!(kernel.notification_bits.get(1).copied().unwrap_or(0), 0));
}

#[test]
fn a_refused_doorbell_is_reported() {
    let words = region(HEADER_WORDS + 1);
    let ring = Ring::<u64>::new(&words).unwrap();
    let mut consumer = ring.consumer().unwrap();
    with(|kernel| kernel.next_status = Some(HvcError::Denied.code()));
    assert_eq!(
        consumer.pop_blocking(&DOORBELLS),
        Err(RingError::Doorbell(HvcError::Denied))
    );
    assert_eq!(words[CONSUMER_WAITING].load(Ordering::Relaxed), 0);
}

#[test]
fn a_vandal_detected_while_blocked_is_reported_not_waited_on() {
    let words = leaked_region(HEADER_WORDS + 8);
    let ring = Ring::<u64>::new(words).unwrap();
    let mut consumer = ring.consumer().unwrap();
    set_peer(move || {
        words[PRODUCER_INDEX].store(0xdead_beef_dead_beef, Ordering::Relaxed);
        DOORBELLS.data_ready.signal(1).unwrap();
    });
    assert_eq!(consumer.pop_blocking(&DOORBELLS), Err(RingError::Corrupt));
}

/// A consumer woken but not yet running (its wait mark still set) is signalled once, not on
/// every push; a new wait (a new mark) is signalled again. Likewise for the producer.
#[test]
fn each_wait_is_signalled_once() {
    let words = region(HEADER_WORDS + 8);
    let ring = Ring::<u64>::new(&words).unwrap();
    let mut producer = ring.producer().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let signals = |slot: u64| {
        with(|kernel| {
            let calls = kernel.calls.iter();
            calls
                .filter(|(number, arguments)| *number == abi::hvc::SIGNAL && arguments[0] == slot)
                .count()
        })
    };
    words[CONSUMER_WAITING].store(wait_mark(0), Ordering::Relaxed);
    for value in 0..3 {
        producer.push_blocking(value, &DOORBELLS).unwrap();
    }
    assert_eq!(signals(1), 1);
    assert_eq!(consumer.pop(), Ok(Some(0)));
    words[CONSUMER_WAITING].store(wait_mark(1), Ordering::Relaxed);
    producer.push_blocking(3, &DOORBELLS).unwrap();
    assert_eq!(signals(1), 2);
    // The producer waits at a full ring (8 slots, 4 used): space_free once half is free.
    for value in 4..8 {
        producer.push(value).unwrap();
    }
    words[PRODUCER_WAITING].store(wait_mark(8), Ordering::Relaxed);
    for expected in 1..8 {
        assert_eq!(consumer.pop_blocking(&DOORBELLS), Ok(expected));
    }
    assert_eq!(signals(2), 1);
}
