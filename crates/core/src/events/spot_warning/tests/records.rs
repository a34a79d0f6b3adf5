//! The interruption record of a group: a pool's cooldown, a burst that shelters the group,
//! and duplicates never counted twice.

use super::*;

pub(super) fn record(g: &GroupSnapshot, instance: &str, spot: u32, policy: &Policy) -> Action {
    decide_records(
        instance,
        g,
        &Pool::new("m5.large", "us-east-1a"),
        spot,
        policy,
        NOW,
    )
}

pub(super) fn recorded(a: &Action) -> (Option<Timestamp>, String, Option<Timestamp>) {
    match &a.kind {
        ActionKind::RecordInterruption {
            cooldown_until,
            interruptions,
            sheltered_until,
            ..
        } => (*cooldown_until, interruptions.clone(), *sheltered_until),
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_interruption_cools_the_pool_down_and_is_listed() {
    // GIVEN a group of 10 spot instances and the default policy
    let g = managed();
    // WHEN one is interrupted
    let a = record(&g, ID, 10, &Policy::default());
    // THEN its pool cools down for 60 minutes, the instance is listed, no shelter
    let (cooldown, list, shelter) = recorded(&a);
    assert_eq!(cooldown, Some(NOW.plus_minutes(60)));
    assert_eq!(list, format!("{ID}@{}", NOW.unix()));
    assert_eq!(shelter, None);
    assert_eq!(a.reason, Reason::PoolInterrupted);
}

#[test]
fn a_burst_reaching_the_threshold_shelters_the_group() {
    // GIVEN 10 spot instances, shelter at 20%, one interruption 10 minutes ago
    let earlier = format!("i-aaaaaaaaaaaaaaaaa@{}", NOW.plus_minutes(-10).unix());
    let g = group(&[
        (tags::ENABLED, "true"),
        (tags::INTERRUPTIONS, &earlier),
        (tags::SHELTER_PERCENT, "20"),
    ]);
    let p = Policy {
        shelter_percent: 20,
        ..Policy::default()
    };
    // WHEN a second arrives: 2 of 10 is 20%
    let a = record(&g, ID, 10, &p);
    // THEN the group is sheltered for the cooldown, and this is the burst users hear about
    let (_, list, shelter) = recorded(&a);
    assert_eq!(shelter, Some(NOW.plus_minutes(60)));
    assert_eq!(a.reason, Reason::InterruptionBurst);
    assert_eq!(list.split(' ').count(), 2);
    // AND with 11 spot instances, 2 is below 20%: no shelter
    assert_eq!(recorded(&record(&g, ID, 11, &p)).2, None);
}

#[test]
fn never_shelter_on_a_single_interruption() {
    // GIVEN a group of one spot instance: one interruption is 100%
    let a = record(&managed(), ID, 1, &Policy::default());
    // THEN still no shelter: at least two are needed
    assert_eq!(recorded(&a).2, None);
    assert!(!shelter_reached(1, 1, 10));
    assert!(shelter_reached(2, 1, 10));
    assert!(shelter_reached(2, 20, 10));
    assert!(!shelter_reached(2, 21, 10));
}

#[test]
fn a_duplicate_delivery_is_not_counted_twice() {
    // GIVEN the instance is already listed, 5 minutes ago
    let listed = format!("{ID}@{}", NOW.plus_minutes(-5).unix());
    let g = group(&[(tags::ENABLED, "true"), (tags::INTERRUPTIONS, &listed)]);
    // WHEN the same instance is recorded again, in a group of one spot instance
    let (_, list, shelter) = recorded(&record(&g, ID, 1, &Policy::default()));
    // THEN the list is unchanged, and one interruption does not shelter
    assert_eq!(list, listed);
    assert_eq!(shelter, None);
}

#[test]
fn later_records_are_kept_and_an_ongoing_shelter_is_extended_quietly() {
    // GIVEN a longer cooldown on the pool and a shelter already running
    let pool = Pool::new("m5.large", "us-east-1a");
    let far = NOW.plus_minutes(600).to_rfc3339();
    let soon = NOW.plus_minutes(5).to_rfc3339();
    let list = format!("i-aaaaaaaaaaaaaaaaa@{}", NOW.plus_minutes(-1).unix());
    let g = group(&[
        (tags::ENABLED, "true"),
        (&cooldown_key(&pool), &far),
        (tags::SHELTERED_UNTIL, &soon),
        (tags::INTERRUPTIONS, &list),
    ]);
    // WHEN a second interruption arrives in a group of 2 spot instances
    let a = record(&g, ID, 2, &Policy::default());
    let (cooldown, _, shelter) = recorded(&a);
    // THEN the later cooldown stays, the shelter runs to the new cooldown's end, and it is
    // not announced again
    assert_eq!(cooldown, Some(NOW.plus_minutes(600)));
    assert_eq!(shelter, Some(NOW.plus_minutes(60)));
    assert_eq!(a.reason, Reason::PoolInterrupted);
}
