use std::collections::BTreeMap;

use super::*;
use crate::mixed::effective_policy;
use crate::mixed::tests::{group, policy};
use crate::model::Lifecycle;
use crate::testkit::{instance, member, AZS, NOW};

fn at(g: &GroupSnapshot, percent: Option<u32>, record: Option<&str>, sheltered: bool) -> GroupSnapshot {
    let mut g = g.clone();
    g.mixed.as_mut().unwrap().on_demand_percent = percent;
    if let Some(r) = record {
        g.tags.insert(tags::DISTRIBUTION_RAISED_FROM.into(), r.into());
    }
    if sheltered {
        g.tags
            .insert(tags::SHELTERED_UNTIL.into(), "2099-01-01T00:00:00Z".into());
    }
    g
}

fn step(g: &GroupSnapshot) -> Option<(ActionKind, Reason)> {
    let policy = effective_policy(g, &Policy::default());
    distribution_step(g, &BTreeMap::new(), &policy, NOW)
        .unwrap()
        .map(|a| (a.kind, a.reason))
}

#[test]
fn a_sheltered_group_launches_on_demand_and_gets_its_owners_value_back_exactly() {
    let g = group(policy(Some(1), Some(20)), &[]);
    // GIVEN a group at rest: nothing to do
    assert_eq!(step(&at(&g, Some(20), None, false)), None);
    // WHEN it is sheltered THEN its percent goes to 100, the owner's 20 recorded first
    let raise = ActionKind::SetDistribution {
        on_demand_percent: 100,
        record: Some(20),
        sheltered_until: None,
        because: Some(NoSpot::Sheltered(
            Timestamp::parse_rfc3339("2099-01-01T00:00:00Z").unwrap(),
        )),
    };
    assert_eq!(
        step(&at(&g, Some(20), None, true)),
        Some((raise.clone(), Reason::DistributionRaised))
    );
    // AND a stop after the record alone raises again, keeping the first record
    assert_eq!(
        step(&at(&g, Some(20), Some("on-demand-percent=20"), true)),
        Some((raise, Reason::DistributionRaised))
    );
    // AND once raised, nothing more while sheltered, and the floor is the owner's value
    let raised = at(&g, Some(100), Some("on-demand-percent=20"), true);
    assert_eq!(step(&raised), None);
    assert_eq!(
        effective_policy(&raised, &Policy::default()).on_demand_percent,
        20
    );
    // WHEN the shelter ends THEN exactly 20 comes back and the record goes
    let restore = ActionKind::SetDistribution {
        on_demand_percent: 20,
        record: None,
        sheltered_until: None,
        because: None,
    };
    let over = at(&g, Some(100), Some("on-demand-percent=20"), false);
    assert_eq!(step(&over), Some((restore.clone(), Reason::DistributionRestored)));
    // AND a stop after the restore alone restores the same again
    let half = at(&g, Some(20), Some("on-demand-percent=20"), false);
    assert_eq!(step(&half), Some((restore, Reason::DistributionRestored)));
    // AND a value the owner set meanwhile is kept: only the record goes
    let changed = at(&g, Some(50), Some("on-demand-percent=20"), false);
    assert!(matches!(
        step(&changed),
        Some((
            ActionKind::ClearRecords { .. },
            Reason::DistributionChangedByOwner
        ))
    ));
    // AND a group already all on-demand has nothing to raise
    assert_eq!(step(&at(&g, None, None, true)), None);
}

#[test]
fn a_value_the_owner_sets_while_raised_is_the_one_that_comes_back() {
    let g = group(policy(Some(1), Some(20)), &[]);
    // GIVEN a raised group, still sheltered, whose owner sets 50 meanwhile (IaC, say)
    let changed = at(&g, Some(50), Some("on-demand-percent=20"), true);
    // WHEN it plans THEN the old record goes, naming the owner's change
    assert!(
        matches!(
            step(&changed),
            Some((
                ActionKind::ClearRecords { .. },
                Reason::DistributionChangedByOwner
            ))
        ),
        "{:?}",
        step(&changed)
    );
    // AND the next cycle, without the record, raises again recording 50
    let next = at(&g, Some(50), None, true);
    assert!(
        matches!(
            step(&next),
            Some((
                ActionKind::SetDistribution {
                    on_demand_percent: 100,
                    record: Some(50),
                    ..
                },
                Reason::DistributionRaised
            ))
        ),
        "{:?}",
        step(&next)
    );
}

#[test]
fn an_unreadable_record_is_a_configuration_error_naming_it() {
    let g = group(policy(Some(1), Some(20)), &[]);
    for bad in [
        "20",
        "on-demand-percent=101",
        "on-demand-percent=-1",
        "on-demand-percent=",
        "percent=20",
        "on-demand-percent=+5",
    ] {
        let g = at(&g, Some(100), Some(bad), false);
        let err = distribution_step(&g, &BTreeMap::new(), &Policy::default(), NOW).unwrap_err();
        assert_eq!(err.key(), tags::DISTRIBUTION_RAISED_FROM, "{bad}");
    }
    assert_eq!(raised_from_value(20), "on-demand-percent=20");
}

/// A group of the policy (types m5.large and m5a.large, in the testkit's three AZs) whose
/// owner wants all spot above none: desired 2, with `running` of its instances InService.
fn wanting_two(running: usize) -> (GroupSnapshot, BTreeMap<String, Instance>) {
    let mut g = group(policy(Some(0), Some(0)), &[]);
    g.desired = 2;
    let mut instances = BTreeMap::new();
    for n in 0..running {
        let id = format!("i-od{n}");
        g.members.push(member(&id));
        instances.insert(id.clone(), instance(&id, "m5.large", AZS[0], Lifecycle::OnDemand));
    }
    (g, instances)
}

fn raise_of(g: &GroupSnapshot, instances: &BTreeMap<String, Instance>) -> Option<ActionKind> {
    let policy = effective_policy(g, &Policy::default());
    distribution_step(g, instances, &policy, NOW)
        .unwrap()
        .filter(|a| a.reason == Reason::DistributionRaised)
        .map(|a| a.kind)
}

#[test]
fn spot_capacity_failures_are_told_from_other_failures() {
    let aws = "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request. Launching EC2 instance failed.";
    assert!(spot_capacity_failure("Failed", aws));
    assert!(!spot_capacity_failure("Successful", aws), "only a failure");
    assert!(!spot_capacity_failure("InProgress", aws));
    // an on-demand shortage is not a spot one: on-demand is what the fallback launches
    let od = "We currently do not have sufficient m5.large capacity in the Availability Zone you requested (us-east-1a). InsufficientInstanceCapacity. Launching EC2 instance failed.";
    assert!(!spot_capacity_failure("Failed", od));
    assert!(!spot_capacity_failure(
        "Failed",
        "Could not launch Spot Instances. SpotMaxPriceTooLow - Your Spot request price is lower than the minimum required Spot request fulfillment price."
    ));
}

#[test]
fn a_recent_spot_capacity_failure_raises_with_a_cooldown_and_an_old_one_does_not() {
    // GIVEN a group of 2 with 1 InService whose launches failed for spot capacity 3 minutes ago
    let (mut g, instances) = wanting_two(1);
    g.spot_failed_at = Some(NOW.plus_secs(-180));
    // THEN its distribution goes to 100, the owner's 0 recorded, sheltered for the cooldown
    assert_eq!(
        raise_of(&g, &instances),
        Some(ActionKind::SetDistribution {
            on_demand_percent: 100,
            record: Some(0),
            sheltered_until: Some(NOW.plus_minutes(60)),
            because: Some(NoSpot::SpotLaunchFailed(NOW.plus_secs(-180))),
        })
    );
    // AND with a cooldown of 0 it is raised without a shelter
    g.tags.insert(tags::COOLDOWN_MINUTES.into(), "0".into());
    let p = effective_policy(&g, &Policy::from_tags(&g.tags, &Policy::default()).unwrap());
    let a = distribution_step(&g, &instances, &p, NOW).unwrap().unwrap();
    assert!(matches!(
        a.kind,
        ActionKind::SetDistribution {
            sheltered_until: None,
            record: Some(0),
            ..
        }
    ));
    g.tags.remove(tags::COOLDOWN_MINUTES);
    // AND a failure older than the window, or unread, says nothing
    g.spot_failed_at = Some(NOW.plus_minutes(-SPOT_FAILURE_MINUTES));
    assert_eq!(raise_of(&g, &instances), None);
    g.spot_failed_at = None;
    assert_eq!(raise_of(&g, &instances), None);
}

#[test]
fn desired_unmet_raises_only_while_every_spot_pool_of_the_group_is_marked() {
    let until = NOW.plus_minutes(5).to_rfc3339();
    let mark = |g: &mut GroupSnapshot, t: &str, az: &str| {
        let key = crate::records::no_capacity_key(&Pool::new(t, az));
        g.tags.insert(key, until.clone());
    };
    // GIVEN a group of 2 with 1 InService, and every pool but one marked without capacity
    let (mut g, instances) = wanting_two(1);
    for t in ["m5.large", "m5a.large"] {
        for az in AZS {
            mark(&mut g, t, az);
        }
    }
    let last = crate::records::no_capacity_key(&Pool::new("m5a.large", AZS[2]));
    let full = g.clone();
    g.tags.remove(&last);
    // THEN nothing: AWS launches in the pool that has capacity
    assert_eq!(raise_of(&g, &instances), None);
    // WHEN the last pool is marked THEN the raise, naming the pools
    let raise = raise_of(&full, &instances);
    assert!(
        matches!(&raise, Some(ActionKind::SetDistribution { because: Some(NoSpot::PoolsWithoutCapacity(p)), .. }) if p.len() == 6),
        "{raise:?}"
    );
    // AND a pool spotswap's globs deny does not count: marking the allowed ones is enough
    g.tags.insert(tags::DENIED_TYPES.into(), "m5a.*".into());
    let p = Policy::from_tags(&g.tags, &Policy::default()).unwrap();
    let p = effective_policy(&g, &p);
    let a = distribution_step(&g, &instances, &p, NOW).unwrap();
    assert_eq!(a.map(|a| a.reason), Some(Reason::DistributionRaised));
    // AND a group at its desired capacity is not raised, marks or not
    let (mut at_desired, instances) = wanting_two(2);
    at_desired.tags = full.tags.clone();
    assert_eq!(raise_of(&at_desired, &instances), None);
}

#[test]
fn after_a_raise_the_cooldown_holds_it_and_then_the_owners_value_comes_back() {
    // GIVEN a group raised for a spot failure: percent 100, the owner's 0 recorded, sheltered
    let (mut g, instances) = wanting_two(2);
    g.mixed.as_mut().unwrap().on_demand_percent = Some(100);
    g.tags.insert(
        tags::DISTRIBUTION_RAISED_FROM.into(),
        "on-demand-percent=0".into(),
    );
    g.tags
        .insert(tags::SHELTERED_UNTIL.into(), NOW.plus_minutes(30).to_rfc3339());
    let policy = effective_policy(&g, &Policy::default());
    // THEN during the cooldown nothing changes, even with the group back at desired
    assert_eq!(distribution_step(&g, &instances, &policy, NOW).unwrap(), None);
    // AND after it, exactly the owner's 0 comes back
    let later = NOW.plus_minutes(31);
    let a = distribution_step(&g, &instances, &policy, later)
        .unwrap()
        .unwrap();
    assert_eq!(a.reason, Reason::DistributionRestored);
    assert!(matches!(
        a.kind,
        ActionKind::SetDistribution {
            on_demand_percent: 0,
            record: None,
            ..
        }
    ));
}
