use super::*;
use crate::model::{InstanceState, Lifecycle};
use crate::testkit::{instance, Fleet, Tagged, A, B, GROUP};
use crate::Reason;

const X1: &str = "i-0000000000000000a";
const X2: &str = "i-0000000000000000b";
const X3: &str = "i-0000000000000000c";

/// A launch of ours for [`GROUP`] from the batch `list`.
fn batch_launch(id: &str, list: &[&str]) -> Instance {
    instance(id, "m5a.large", A, Lifecycle::Spot)
        .tagged(tags::GROUP, GROUP)
        .tagged(tags::BATCH, &value(list))
}

fn paired(launches: Vec<Instance>) -> BTreeMap<String, Option<String>> {
    let mut all: BTreeMap<String, Instance> = launches.into_iter().map(|i| (i.id.clone(), i)).collect();
    pair(&mut all);
    all.into_values()
        .map(|i| (i.id.clone(), i.replaces().map(str::to_string)))
        .collect()
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn a_batch_value_names_its_originals_in_order() {
    let v = value(&[X1, X2, X3]);
    assert_eq!(originals(&v), Some(vec![X1, X2, X3]));
    // twelve ids fit a tag value; thirteen would not
    let twelve: Vec<String> = (0..MAX_BATCH).map(|n| format!("i-{n:017x}")).collect();
    assert!(value(&twelve).len() <= 256);
    assert!(originals(&value(&twelve)).is_some());
}

#[test]
fn a_batch_value_written_by_hand_names_nothing() {
    for bad in ["", "i-1", "web", &format!("{X1} {X1}"), &format!("{X1},{X2}")] {
        assert_eq!(originals(bad), None, "{bad:?}");
    }
    let thirteen: Vec<String> = (0..=MAX_BATCH).map(|n| format!("i-{n:08x}")).collect();
    assert_eq!(originals(&value(&thirteen)), None);
}

#[test]
fn launches_pair_with_the_originals_in_instance_id_order_whatever_order_they_are_read_in() {
    // GIVEN a batch of three, read in two different orders
    let list = [X1, X2, X3];
    let ids = [
        "i-0000000000000003f",
        "i-0000000000000001f",
        "i-0000000000000002f",
    ];
    let forward: Vec<Instance> = ids.iter().map(|id| batch_launch(id, &list)).collect();
    let mut backward = forward.clone();
    backward.reverse();
    // THEN both readers derive the same pairs: the lowest id takes the first original
    let want: BTreeMap<String, Option<String>> = [
        ("i-0000000000000001f", some(X1)),
        ("i-0000000000000002f", some(X2)),
        ("i-0000000000000003f", some(X3)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(paired(forward), want);
    assert_eq!(paired(backward), want);
}

#[test]
fn the_executors_pairs_are_the_ones_every_reader_derives() {
    // GIVEN CreateFleet's answer, in its own order
    let originals = vec![X1.to_string(), X2.to_string(), X3.to_string()];
    let launched = vec![
        "i-000000000000000f2".to_string(),
        "i-000000000000000f1".to_string(),
    ];
    let assigned = assign(&originals, &launched);
    // THEN the first two originals have a launch each and the third none (a partial fill)
    assert_eq!(
        assigned,
        vec![
            (X1, Some("i-000000000000000f1")),
            (X2, Some("i-000000000000000f2")),
            (X3, None)
        ]
    );
    // AND a reader of the two launches derives exactly those pairs
    let list = [X1, X2, X3];
    let derived = paired(launched.iter().map(|id| batch_launch(id, &list)).collect());
    for (original, launch) in assigned {
        if let Some(l) = launch {
            assert_eq!(derived[l].as_deref(), Some(original));
        }
    }
}

#[test]
fn an_anchored_pair_stands_when_a_sibling_dies() {
    // GIVEN a batch of three whose middle launch was attached (anchored to X2)
    let list = [X1, X2, X3];
    let anchored = batch_launch("i-0000000000000002f", &list).tagged(tags::REPLACES, X2);
    let mut first = batch_launch("i-0000000000000001f", &list);
    let third = batch_launch("i-0000000000000003f", &list);
    // WHEN the first is detached on interruption (alive, dying)
    first = first.tagged(tags::DETACHED_AT, "2026-01-01T00:00:00Z");
    let got = paired(vec![first.clone(), anchored.clone(), third.clone()]);
    // THEN each keeps its original: the dying one keeps X1, so the third keeps X3
    assert_eq!(got["i-0000000000000001f"], some(X1));
    assert_eq!(got["i-0000000000000002f"], some(X2));
    assert_eq!(got["i-0000000000000003f"], some(X3));
    // AND once the first is gone from every view, the third takes X1, never X2 (anchored)
    let got = paired(vec![anchored, third]);
    assert_eq!(got["i-0000000000000003f"], some(X1));
}

#[test]
fn more_launches_than_originals_leave_the_extra_unpaired_and_a_bad_value_pairs_nothing() {
    // GIVEN a batch of two launched twice (a repeat raced past the guard)
    let list = [X1, X2];
    let launches: Vec<Instance> = (1..=4)
        .map(|n| batch_launch(&format!("i-000000000000000{n}f"), &list))
        .collect();
    let got = paired(launches);
    // THEN two are paired and two are not: the reaper ends those at their orphan age
    assert_eq!(got.values().filter(|o| o.is_some()).count(), 2);
    assert_eq!(got["i-0000000000000003f"], None);
    // AND a launch whose batch tag names no instance ids is paired with nothing
    let bad = instance("i-0000000000000009f", "m5a.large", A, Lifecycle::Spot)
        .tagged(tags::GROUP, GROUP)
        .tagged(tags::BATCH, "web api");
    assert_eq!(paired(vec![bad])["i-0000000000000009f"], None);
}

#[test]
fn batches_of_two_groups_with_one_list_pair_apart() {
    let list = [X1];
    let other = instance("i-0000000000000002f", "m5a.large", A, Lifecycle::Spot)
        .tagged(tags::GROUP, "api")
        .tagged(tags::BATCH, &value(&list));
    let got = paired(vec![batch_launch("i-0000000000000001f", &list), other]);
    assert_eq!(got["i-0000000000000001f"], some(X1));
    assert_eq!(got["i-0000000000000002f"], some(X1));
}

/// A group of three on-demand m5.large in one AZ (and one in another), all due for a swap.
fn due_group() -> Fleet {
    Fleet::new()
        .on_demand(X1, A)
        .on_demand(X2, A)
        .on_demand(X3, A)
        .on_demand("i-0000000000000000d", B)
        .desired(4)
        .tag(tags::ON_DEMAND_BASE, "0")
        .tag(tags::REPLACE_PER_CYCLE, "10")
        .tag(tags::MAX_POOL_PERCENT, "100")
}

#[test]
fn launches_sending_one_request_share_a_run_and_others_do_not() {
    // GIVEN a plan launching four replacements, three of them into the same subnet
    let plan = due_group().plan();
    let launches: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
        .collect();
    assert_eq!(launches.len(), 4, "{:?}", plan.actions);
    // THEN the three in subnet A share one run and the fourth has its own
    let lens: Vec<usize> = runs(&plan.actions)
        .into_iter()
        .filter(|r| matches!(plan.actions[r[0]].kind, ActionKind::Launch(_)))
        .map(|r| r.len())
        .collect();
    let mut sorted = lens.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 3], "{lens:?}");
    // AND where the pool cap takes the cheapest pool from a later launch's candidates, that
    // launch sends another request: it has a run of its own (a batch never overfills a pool)
    let capped = due_group().tag(tags::MAX_POOL_PERCENT, "50").plan();
    let in_a: Vec<Vec<usize>> = runs(&capped.actions)
        .into_iter()
        .filter(|r| matches!(&capped.actions[r[0]].kind, ActionKind::Launch(s) if s.subnet_id == crate::testkit::subnet(A)))
        .collect();
    assert_eq!(in_a.iter().map(Vec::len).sum::<usize>(), 3);
    assert!(in_a.len() >= 2, "{in_a:?}");
    // AND every action is in exactly one run, in order
    let mut covered: Vec<usize> = runs(&plan.actions).into_iter().flatten().collect();
    covered.sort();
    assert_eq!(covered, (0..plan.actions.len()).collect::<Vec<_>>());
}

#[test]
fn a_run_holds_at_most_twelve_launches_and_twenty_attaches() {
    let spec_action = |n: usize| {
        let plan = due_group().plan();
        let mut a = plan
            .actions
            .into_iter()
            .find(|a| matches!(a.kind, ActionKind::Launch(_)))
            .unwrap();
        if let ActionKind::Launch(spec) = &mut a.kind {
            spec.replaces = format!("i-{n:017x}");
        }
        a
    };
    let launches: Vec<Action> = (0..30).map(spec_action).collect();
    let lens: Vec<usize> = runs(&launches).into_iter().map(|r| r.len()).collect();
    assert_eq!(lens, vec![12, 12, 6]);
    let attach = |n: usize| {
        Action::new(
            ActionKind::Attach {
                instance: format!("i-{n:017x}"),
                replaces: X1.into(),
                batched: false,
            },
            Reason::ReplacementReady,
            GROUP,
        )
    };
    let attaches: Vec<Action> = (0..45).map(attach).collect();
    let lens: Vec<usize> = runs(&attaches).into_iter().map(|r| r.len()).collect();
    assert_eq!(lens, vec![20, 20, 5]);
}

#[test]
fn a_batch_request_tags_the_list_in_place_of_the_original_with_a_token_of_its_own() {
    let plan = due_group().plan();
    let specs: Vec<&LaunchSpec> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Launch(s) if s.subnet_id == crate::testkit::subnet(A) => Some(s),
            _ => None,
        })
        .collect();
    let batch = FleetBatch::of(&specs).unwrap();
    assert_eq!(batch.count(), 3);
    let keys: Vec<&str> = batch.spec.tags.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&tags::BATCH) && !keys.contains(&tags::REPLACES),
        "{keys:?}"
    );
    let listed = batch.spec.tags.iter().find(|(k, _)| k == tags::BATCH).unwrap();
    assert_eq!(originals(&listed.1).unwrap().len(), 3);
    // the token is a function of the whole request: the same batch, the same token
    assert_eq!(
        FleetBatch::of(&specs).unwrap().spec.client_token,
        batch.spec.client_token
    );
    assert!(batch.spec.client_token.len() <= 64);
    assert!(specs.iter().all(|s| s.client_token != batch.spec.client_token));
}

#[test]
fn a_derived_pair_is_attached_and_anchored_by_the_attach() {
    // GIVEN the three launches of a batch, running with their checks passed, paired on read
    let list = [X1, X2, X3];
    let mut fleet = due_group().tag(tags::REPLACE_PER_CYCLE, "0");
    for n in 1..=3 {
        let mut l = batch_launch(&format!("i-000000000000000{n}f"), &list);
        l.status_ok = Some(true);
        l.state = InstanceState::Running;
        fleet.instances.insert(l.id.clone(), l);
    }
    pair(&mut fleet.instances);
    // WHEN the cycle plans
    let plan = fleet.plan();
    // THEN each launch is attached in place of its derived original, and the attach anchors it
    let attaches: Vec<(&str, &str, bool)> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Attach {
                instance,
                replaces,
                batched,
            } => Some((instance.as_str(), replaces.as_str(), *batched)),
            _ => None,
        })
        .collect();
    assert_eq!(
        attaches,
        vec![
            ("i-0000000000000001f", X1, true),
            ("i-0000000000000002f", X2, true),
            ("i-0000000000000003f", X3, true)
        ]
    );
    // AND the three attaches share one run (one AttachInstances)
    assert!(runs(&plan.actions).iter().any(|r| r.len() == 3));
    // AND the tags the attach writes name the original, which then names nothing for itself
    let kv = crate::records::swap_tags("i-0000000000000001f", Some(X1), crate::testkit::NOW);
    let mut original = fleet.instances[X1].clone();
    original.tags.extend(kv.clone());
    assert_eq!(original.replaces(), None);
    let mut launch = fleet.instances["i-0000000000000001f"].clone();
    launch.tags.extend(kv);
    assert_eq!(launch.replaces(), Some(X1));
}
