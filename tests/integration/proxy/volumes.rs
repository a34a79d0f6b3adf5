//! The proxy's AttachVolume faces AWS's rules, which moto lacks: a volume already attached is
//! refused with `VolumeInUse`, and a device the instance already uses with
//! `InvalidParameterValue`; neither changes anything in moto.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use spotswap_tests::fleet::Env;
use spotswap_tests::proxy::Proxy;

use crate::stateful::{carry_group, volume, DEVICE};

async fn attach(env: &Env, vol: &str, instance: &str, device: &str) -> Result<(), String> {
    env.ec2
        .attach_volume()
        .volume_id(vol)
        .instance_id(instance)
        .device(device)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.into_service_error().code().unwrap_or("no code").to_string())
}

async fn attached_to(env: &Env, vol: &str) -> Vec<String> {
    let v = env
        .ec2
        .describe_volumes()
        .volume_ids(vol)
        .send()
        .await
        .expect("describe volume");
    v.volumes()
        .iter()
        .flat_map(|v| v.attachments())
        .filter_map(|a| a.instance_id().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_volume_is_refused_as_aws_refuses_it() {
    // GIVEN two instances of a group behind the proxy, and a volume attached to the first
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let (group, members, az) = carry_group(&env, "proxy-volumes", 2).await;
    let (first, second) = (&members[0], &members[1]);
    let vol = volume(&env, &group, &az, Some(first), &[]).await;

    // WHEN the attached volume is attached to the second instance
    // THEN AWS's VolumeInUse, and the volume stays on the first only
    assert_eq!(
        attach(&env, &vol, second, "/dev/sdg").await,
        Err("VolumeInUse".into())
    );
    assert_eq!(attached_to(&env, &vol).await, vec![first.clone()]);

    // WHEN a free volume is attached at a device the first instance already uses
    let free = volume(&env, &group, &az, None, &[]).await;
    // THEN InvalidParameterValue, and it stays free
    assert_eq!(
        attach(&env, &free, first, DEVICE).await,
        Err("InvalidParameterValue".into())
    );
    assert!(attached_to(&env, &free).await.is_empty());

    // AND a free volume at a free device attaches, as on AWS
    assert_eq!(attach(&env, &free, second, DEVICE).await, Ok(()));
    assert_eq!(attached_to(&env, &free).await, vec![second.clone()]);
}
