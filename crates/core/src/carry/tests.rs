use super::*;
use crate::model::Lifecycle;
use crate::testkit::{Fleet, Stage, Tagged, A, B, GRACE_SECS};

fn eip(alloc: &str, on: Option<&str>) -> Address {
    Address {
        allocation_id: alloc.into(),
        public_ip: "203.0.113.10".into(),
        instance: on.map(str::to_string),
        group_record: Some("web".into()),
    }
}

fn vol(id: &str, az: &str, on: Option<&str>, device: &str) -> Volume {
    Volume {
        id: id.into(),
        az: az.into(),
        state: if on.is_some() {
            VolumeState::InUse
        } else {
            VolumeState::Available
        },
        attachment: on.map(|i| VolumeAttachment {
            instance: i.into(),
            device: device.into(),
            state: AttachState::Attached,
        }),
        device_record: Some(device.into()),
    }
}

/// A stateful group: on-demand i-od1 in A, carry tags set, `carried` as given.
fn stateful(carried: Carried) -> Fleet {
    Fleet::new()
        .tag(tags::CARRY_EIP, "true")
        .tag(tags::CARRY_VOLUMES, "data")
        .on_demand("i-od1", A)
        .desired(1)
        .with_group(|g| g.carried = Some(carried))
}

fn kinds(actions: &[Action]) -> Vec<(&'static str, Reason)> {
    actions.iter().map(|a| (a.kind.name(), a.reason)).collect()
}

fn moves(actions: &[Action]) -> Vec<&ActionKind> {
    actions
        .iter()
        .map(|a| &a.kind)
        .filter(|k| {
            matches!(
                k,
                ActionKind::AssociateAddress { .. }
                    | ActionKind::AttachVolume { .. }
                    | ActionKind::DetachVolume { .. }
            )
        })
        .collect()
}

#[test]
fn the_retire_waits_until_the_address_is_on_the_inservice_replacement() {
    // GIVEN a swap whose replacement is InService past the grace, the original holding the EIP
    let carried = Carried {
        addresses: vec![eip("eipalloc-1", Some("i-od1"))],
        ..Carried::default()
    };
    let fleet = stateful(carried).launch(
        "i-new",
        "i-od1",
        Stage::Attached {
            secs_ago: i64::from(GRACE_SECS) + 60,
        },
    );
    // WHEN the cycle plans
    let plan = fleet.plan();
    // THEN the address moves to the replacement, and the retire waits for it
    assert!(plan.actions.iter().any(|a| a.kind
        == ActionKind::AssociateAddress {
            allocation_id: "eipalloc-1".into(),
            instance: "i-new".into(),
            from: Some("i-od1".into()),
        }));
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Retire { .. })));
    assert!(kinds(&plan.actions).contains(&("wait", Reason::WaitingForCarry)));

    // AND once the address is on the replacement, the original is retired, moving nothing
    let done = fleet.with_group(|g| {
        g.carried = Some(Carried {
            addresses: vec![eip("eipalloc-1", Some("i-new"))],
            ..Carried::default()
        })
    });
    let plan = done.plan();
    assert!(moves(&plan.actions).is_empty(), "{:?}", plan.actions);
    assert!(plan
        .actions
        .iter()
        .any(|a| matches!(&a.kind, ActionKind::Retire { instance, .. } if instance == "i-od1")));
}

#[test]
fn the_address_stays_while_the_replacement_is_not_inservice() {
    // GIVEN a replacement attached but still Pending
    let carried = Carried {
        addresses: vec![eip("eipalloc-1", Some("i-od1"))],
        ..Carried::default()
    };
    let plan = stateful(carried)
        .launch("i-new", "i-od1", Stage::AttachedPending)
        .plan();
    // THEN nothing moves
    assert!(moves(&plan.actions).is_empty(), "{:?}", plan.actions);
}

#[test]
fn an_interrupted_holders_address_goes_to_the_running_replacement_and_a_free_one_too() {
    // GIVEN i-od1 detached on interruption (still running, holding the EIP), and the group's
    // own replacement i-asg running, and a second, free address recorded for the group
    let carried = Carried {
        addresses: vec![eip("eipalloc-1", Some("i-od1")), eip("eipalloc-2", None)],
        ..Carried::default()
    };
    let fleet = stateful(carried)
        .remove("i-od1")
        .instance(
            crate::testkit::instance("i-od1", "m5.large", A, Lifecycle::Spot)
                .tagged(tags::DETACHED_AT, "2026-01-01T11:58:00Z")
                .tagged(tags::DETACHED_FROM, "web"),
        )
        .spot("i-asg", "m5.large", B);
    let plan = fleet.plan();
    // THEN the first address goes to i-asg; the second finds nobody lacking one, and stays
    let m = moves(&plan.actions);
    assert_eq!(
        m,
        vec![&ActionKind::AssociateAddress {
            allocation_id: "eipalloc-1".into(),
            instance: "i-asg".into(),
            from: Some("i-od1".into()),
        }]
    );
}

#[test]
fn an_address_on_someone_elses_instance_is_left_alone() {
    // GIVEN an address recorded for the group, now on an instance outside it
    let carried = Carried {
        addresses: vec![eip("eipalloc-1", Some("i-stranger"))],
        ..Carried::default()
    };
    let plan = stateful(carried).plan();
    assert!(moves(&plan.actions).is_empty());
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::TagCarried { .. })));
}

#[test]
fn a_volume_is_never_detached_from_a_serving_instance() {
    // GIVEN the original holds the volume and its replacement is InService
    let carried = Carried {
        volumes: vec![vol("vol-1", A, Some("i-od1"), "/dev/sdf")],
        ..Carried::default()
    };
    let plan = stateful(carried)
        .launch("i-new", "i-od1", Stage::Attached { secs_ago: 3600 })
        .plan();
    // THEN the volume stays, and the retire is not held for it (it can only move once the
    // original stops)
    assert!(moves(&plan.actions).is_empty(), "{:?}", plan.actions);
    assert!(plan
        .actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Retire { .. })));
}

#[test]
fn a_volume_leaves_an_instance_past_its_hook_and_lands_on_the_replacement_at_its_device() {
    // GIVEN the original is past its terminating hook (Terminating:Proceed), holding the volume
    let mut carried = Carried {
        volumes: vec![vol("vol-1", A, Some("i-od1"), "/dev/sdf")],
        ..Carried::default()
    };
    carried.proceeding.insert("i-od1".into());
    let fleet = stateful(carried)
        .edit_member("i-od1", |m| m.state = MemberState::Leaving)
        .launch("i-new", "i-od1", Stage::Attached { secs_ago: 3600 });
    // WHEN planned: detached first
    let plan = fleet.plan();
    assert_eq!(
        moves(&plan.actions),
        vec![&ActionKind::DetachVolume {
            volume: "vol-1".into(),
            instance: "i-od1".into(),
        }]
    );
    // AND once available: attached to the replacement at the same device
    let fleet = fleet
        .remove("i-od1")
        .with_group(|g| g.carried.as_mut().unwrap().volumes = vec![vol("vol-1", A, None, "/dev/sdf")]);
    let plan = fleet.plan();
    assert_eq!(
        moves(&plan.actions),
        vec![&ActionKind::AttachVolume {
            volume: "vol-1".into(),
            instance: "i-new".into(),
            device: "/dev/sdf".into(),
        }]
    );
}

#[test]
fn a_detached_volume_with_nobody_in_its_az_is_stranded_not_moved() {
    // GIVEN a free volume in B and the group's only instance in A
    let carried = Carried {
        volumes: vec![vol("vol-1", B, None, "/dev/sdf")],
        ..Carried::default()
    };
    let plan = stateful(carried).plan();
    // THEN VolumeStranded, no mutating call
    assert!(kinds(&plan.actions).contains(&("stranded", Reason::VolumeStranded)));
    assert!(moves(&plan.actions).is_empty());
    // AND the same without a recorded device, even with an instance in its AZ
    let mut v = vol("vol-2", A, None, "/dev/sdf");
    v.device_record = None;
    let plan = stateful(Carried {
        volumes: vec![v],
        ..Carried::default()
    })
    .plan();
    assert!(kinds(&plan.actions).contains(&("stranded", Reason::VolumeStranded)));
    assert!(moves(&plan.actions).is_empty());
}

#[test]
fn two_free_volumes_at_one_device_never_go_to_the_same_instance() {
    // GIVEN two free volumes at /dev/sdf and two instances in A lacking one
    let carried = Carried {
        volumes: vec![
            vol("vol-1", A, None, "/dev/sdf"),
            vol("vol-2", A, None, "/dev/sdf"),
            vol("vol-3", A, None, "/dev/sdf"),
        ],
        ..Carried::default()
    };
    let plan = stateful(carried).spot("i-sp1", "m5.large", A).desired(2).plan();
    // THEN one each, and the third is stranded
    let targets: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::AttachVolume { instance, .. } => Some(instance.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(targets, vec!["i-od1", "i-sp1"]);
    assert!(kinds(&plan.actions).contains(&("stranded", Reason::VolumeStranded)));
}

#[test]
fn the_same_facts_give_the_same_moves_and_done_moves_are_not_repeated() {
    // GIVEN an interrupted holder and a free volume: planned twice from the same snapshot
    let carried = Carried {
        addresses: vec![eip("eipalloc-1", None)],
        volumes: vec![vol("vol-1", A, None, "/dev/sdf")],
        ..Carried::default()
    };
    let fleet = stateful(carried);
    assert_eq!(fleet.plan().actions, fleet.plan().actions);
    // AND after the moves, nothing moves again
    let after = fleet.with_group(|g| {
        g.carried = Some(Carried {
            addresses: vec![eip("eipalloc-1", Some("i-od1"))],
            volumes: vec![vol("vol-1", A, Some("i-od1"), "/dev/sdf")],
            ..Carried::default()
        })
    });
    assert!(moves(&after.plan().actions).is_empty());
}

#[test]
fn records_are_written_where_missing() {
    // GIVEN an address with no record and a volume whose device is not recorded
    let mut a = eip("eipalloc-1", Some("i-od1"));
    a.group_record = None;
    let mut v = vol("vol-1", A, Some("i-od1"), "/dev/sdg");
    v.device_record = None;
    let plan = stateful(Carried {
        addresses: vec![a],
        volumes: vec![v],
        ..Carried::default()
    })
    .plan();
    let records: Vec<(&str, &str)> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::TagCarried { key, value, .. } => Some((key.as_str(), value.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        records,
        vec![(tags::CARRY_EIP_GROUP, "web"), (tags::CARRY_DEVICE, "/dev/sdg")]
    );
}

#[test]
fn bad_carry_values_are_config_errors_and_hold_the_retire() {
    // GIVEN bad values of each carry tag
    for (key, value) in [
        (tags::CARRY_EIP, "yes"),
        (tags::CARRY_EIP, "TRUE"),
        (tags::CARRY_VOLUMES, ""),
        (tags::CARRY_VOLUMES, "aws:data"),
        (tags::CARRY_VOLUMES, " data"),
    ] {
        let fleet = Fleet::new()
            .tag(key, value)
            .on_demand("i-od1", A)
            .desired(1)
            .launch("i-new", "i-od1", Stage::Attached { secs_ago: 3600 });
        // THEN InvalidConfig naming the tag and value, and no retire (the address may be there)
        let plan = fleet.plan();
        let skip = plan.skip.expect("skipped");
        assert_eq!(skip.reason, Reason::InvalidConfig);
        let detail = skip.detail.unwrap();
        assert!(
            detail.contains(key) && detail.contains(&format!("{value:?}")),
            "{detail}"
        );
        assert!(
            !plan.actions.iter().any(|a| matches!(
                a.kind,
                ActionKind::Retire { .. } | ActionKind::AssociateAddress { .. }
            )),
            "{key}={value}: {:?}",
            plan.actions
        );
    }
}

#[test]
fn unread_carried_resources_hold_the_retire() {
    // GIVEN a carry-eip group whose addresses could not be read
    let plan = stateful(Carried::default())
        .with_group(|g| g.carried = None)
        .launch("i-new", "i-od1", Stage::Attached { secs_ago: 3600 })
        .plan();
    assert!(kinds(&plan.actions).contains(&("wait", Reason::WaitingForCarry)));
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Retire { .. })));
}

#[test]
fn the_view_shows_each_resource_where_it_is_and_where_the_plan_moves_it() {
    // GIVEN a swap ready to hand over: the EIP on the original, one volume on it, one volume
    // detached in the replacement's AZ
    let carried = Carried {
        addresses: vec![eip("eipalloc-1", Some("i-od1"))],
        volumes: vec![
            vol("vol-1", A, Some("i-od1"), "/dev/sdf"),
            vol("vol-2", A, None, "/dev/sdg"),
            vol("vol-3", B, None, "/dev/sdh"),
        ],
        ..Carried::default()
    };
    let fleet = stateful(carried).launch(
        "i-new",
        "i-od1",
        Stage::Attached {
            secs_ago: i64::from(GRACE_SECS) + 60,
        },
    );
    let snap = fleet.snapshot();
    let plan = fleet.plan();
    // WHEN the view is made from the plan
    let v = view(&snap.groups[0], &snap.instances, &plan.actions).expect("carried resources read");
    // THEN the address is on the original now and on the replacement after
    assert_eq!(v.addresses.len(), 1);
    assert_eq!(v.addresses[0].instance.as_deref(), Some("i-od1"));
    assert_eq!(v.addresses[0].after.as_deref(), Some("i-new"));
    // AND the serving original keeps its volume; the free one in A goes to the lowest-id
    // receiver; the one in B, where the group has no instance, is stranded
    let by_id = |id: &str| v.volumes.iter().find(|x| x.volume == id).expect(id).clone();
    assert_eq!(by_id("vol-1").after.as_deref(), Some("i-od1"));
    assert_eq!(by_id("vol-1").device.as_deref(), Some("/dev/sdf"));
    let moved = by_id("vol-2");
    assert_eq!(moved.instance, None);
    assert!(moved.after.is_some(), "{moved:?}");
    let stranded = by_id("vol-3");
    assert_eq!(stranded.after, None);
    assert!(
        stranded.stranded.as_deref().is_some_and(|w| w.contains(B)),
        "{stranded:?}"
    );
    // AND every move the view shows is a move the plan makes
    let planned = moves(&plan.actions).len();
    let shown = v.addresses.iter().filter(|a| a.after != a.instance).count()
        + v.volumes.iter().filter(|x| x.after != x.instance).count();
    assert_eq!(shown, planned, "{:?}", plan.actions);
}

#[test]
fn a_group_without_carried_resources_read_has_no_view() {
    let fleet = Fleet::new().on_demand("i-od1", A).desired(1);
    let snap = fleet.snapshot();
    assert_eq!(
        view(&snap.groups[0], &snap.instances, &fleet.plan().actions),
        None
    );
}
