//! The interrupted instance is a swap's original whose replacement already serves: it names
//! the replacement itself (`spotswap:replaced-by`), so the handler needs no look-up of our
//! launches before the replacement request.

use super::*;

/// The first action's kind and reason: the replacement request.
fn first(actions: &[Action]) -> (&ActionKind, Reason) {
    (&actions[0].kind, actions[0].reason)
}

fn detach(decrement: bool) -> ActionKind {
    ActionKind::Detach {
        instance: ID.into(),
        decrement,
    }
}

#[test]
fn an_original_naming_its_serving_replacement_leaves_with_the_decrement() {
    // GIVEN spot O (ID) tagged with its replacement L just before L's attach; no launch look-up
    let (mut g, l_id) = (managed(), "i-0000000000000000b");
    g.desired = 2;
    g.members.push(member(l_id));
    let mut snap = snapshot(MemberState::InService, "InService", g.clone());
    let mut o = crate::testkit::instance(ID, "m5.large", "us-east-1a", Lifecycle::Spot);
    o.tags.insert(tags::REPLACED_BY.into(), l_id.into());
    snap.ec2 = Some(o);
    // WHEN O gets the warning THEN it leaves with the decrement: L serves in its place
    let decide = |s: &EventSnapshot| decide_spot_warning(&detail(WARNING), s, &Settings::default(), NOW);
    assert_eq!(
        first(&decide(&snap)),
        (&detach(true), Reason::OriginalAlreadyReplaced)
    );
    // AND while L is no member (never attached) or is leaving, O is replaced as usual
    let mut leaving = g.clone();
    leaving
        .members
        .iter_mut()
        .filter(|m| m.id == l_id)
        .for_each(|m| m.state = MemberState::Leaving);
    g.members.retain(|m| m.id != l_id);
    for other in [g, leaving] {
        snap.group = Some(other);
        assert_eq!(decide(&snap)[0].reason, Reason::SpotInterruptionWarning);
    }
}

#[test]
fn a_launch_naming_itself_is_replaced_as_usual() {
    // GIVEN spot L (ID), our launch whose swap is complete (its original is gone), carrying the
    //   Attach stage's tags, written on both instances: `replaced-by` names L itself
    let g = managed();
    let mut snap = snapshot(MemberState::InService, "InService", g.clone());
    let mut l = crate::testkit::instance(ID, "m5.large", "us-east-1a", Lifecycle::Spot);
    l.tags.extend(crate::records::swap_tags(ID, None, NOW));
    l.tags.extend([
        (tags::GROUP, g.name.as_str()),
        (tags::REPLACES, "i-0000000000000000f"),
    ]);
    snap.ec2 = Some(l);
    // WHEN L gets the warning THEN it leaves without the decrement: the group replaces it
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    assert_eq!(first(&actions), (&detach(false), Reason::SpotInterruptionWarning));
}
