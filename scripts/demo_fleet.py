"""Seed and summarise the `make demo` fleet in moto (boto3 comes with moto in .venv).

  python scripts/demo_fleet.py seed      four groups: web, api and db managed, batch unmanaged;
                                          db is stateful: an Elastic IP and a data volume
  python scripts/demo_fleet.py summary   on-demand / spot per group and the estimated saving
  python scripts/demo_fleet.py warning G write events/interruption-spot-warning.json about one
                                          of group G's spot instances to stdout

Talks to AWS_ENDPOINT_URL (moto); never to AWS.
"""
import json
import os
import sys

import boto3

REGION = os.environ.get("AWS_REGION", "us-east-1")
ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
PRICES = os.path.join(os.path.dirname(__file__), "..", "prices", "sample-on-demand.json")
MOTO_SPOT_PRICE = 0.00001  # moto's constant spot price

ec2 = boto3.client("ec2", endpoint_url=ENDPOINT, region_name=REGION)
asg = boto3.client("autoscaling", endpoint_url=ENDPOINT, region_name=REGION)

GROUPS = [
    # name, desired, max, tags
    ("web", 4, 4, {"spotswap:enabled": "true"}),
    ("api", 4, 6, {"spotswap:enabled": "true", "spotswap:on-demand-percent": "50"}),
    ("batch", 2, 4, {}),
    # stateful: its Elastic IP and its data volume follow the replacement (one AZ: volumes are zonal)
    ("db", 1, 2, {"spotswap:enabled": "true", "spotswap:carry-eip": "true", "spotswap:carry-volumes": "demo-data"}),
]
STATEFUL = "db"
DATA_KEY = "demo-data"
DEVICE = "/dev/sdf"


def seed():
    subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])[:3]
    for name, desired, max_size, tags in GROUPS:
        lt = ec2.create_launch_template(
            LaunchTemplateName=f"{name}-lt",
            LaunchTemplateData={
                "ImageId": "ami-12c6146b",
                "InstanceType": "m5.large",
                "MetadataOptions": {"HttpTokens": "required"},
            },
        )["LaunchTemplate"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"},
            MinSize=0,
            MaxSize=max_size,
            DesiredCapacity=desired,
            HealthCheckGracePeriod=0,
            VPCZoneIdentifier=",".join(s["SubnetId"] for s in (subnets[:1] if name == STATEFUL else subnets)),
            Tags=[
                {"Key": k, "Value": v, "PropagateAtLaunch": False, "ResourceId": name, "ResourceType": "auto-scaling-group"}
                for k, v in tags.items()
            ]
            + [{"Key": "team", "Value": name, "PropagateAtLaunch": True, "ResourceId": name, "ResourceType": "auto-scaling-group"}],
        )
        # moto's CreateAutoScalingGroup stores a grace period of 0 as 300; its update keeps 0.
        asg.update_auto_scaling_group(AutoScalingGroupName=name, HealthCheckGracePeriod=0)
        managed = "managed" if tags.get("spotswap:enabled") == "true" else "unmanaged"
        print(f"seeded {name}: {desired} x m5.large on-demand, max {max_size}, {managed}, tags {tags}")
        if name == STATEFUL:
            seed_state(name)


def seed_state(name):
    """The stateful group's Elastic IP and data volume, on its one instance."""
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    instance = g["Instances"][0]
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=instance["InstanceId"])
    vol = ec2.create_volume(
        AvailabilityZone=instance["AvailabilityZone"],
        Size=8,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": DATA_KEY, "Value": name}]}],
    )
    ec2.attach_volume(VolumeId=vol["VolumeId"], InstanceId=instance["InstanceId"], Device=DEVICE)
    print(
        f"seeded {name}'s state: Elastic IP {alloc['PublicIp']} and data volume {vol['VolumeId']} "
        f"({DEVICE}) on {instance['InstanceId']}"
    )


def state_summary(name):
    """Where the stateful group's Elastic IP and data volume are, and on what."""
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    members = {m["InstanceId"] for g in members for m in g["Instances"] if m["LifecycleState"] == "InService"}
    lifecycle = {}
    if members:
        for r in ec2.describe_instances(InstanceIds=sorted(members))["Reservations"]:
            for i in r["Instances"]:
                lifecycle[i["InstanceId"]] = "spot" if i.get("InstanceLifecycle") == "spot" else "on-demand"
    where = lambda i: f"{i} ({lifecycle[i]}, InService in {name})" if i in lifecycle else f"{i or 'nothing'} (not in {name})"
    for a in ec2.describe_addresses()["Addresses"]:
        if a.get("InstanceId") in members or any(t["Key"] == "spotswap:carry-eip-group" for t in a.get("Tags", [])):
            print(f"{name}: Elastic IP {a['PublicIp']} on {where(a.get('InstanceId'))}")
    vols = ec2.describe_volumes(Filters=[{"Name": f"tag:{DATA_KEY}", "Values": [name]}])["Volumes"]
    for v in vols:
        on = [(x["InstanceId"], x["Device"]) for x in v.get("Attachments", [])]
        text = ", ".join(f"{where(i)} at {d}" for i, d in on) or "nothing (detached)"
        print(f"{name}: data volume {v['VolumeId']} on {text}")


def summary(title):
    prices = json.load(open(PRICES))["*"]
    groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    ids = [i["InstanceId"] for g in groups for i in g["Instances"]]
    info = {}
    if ids:
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for i in r["Instances"]:
                info[i["InstanceId"]] = i
    print(f"\n== {title}")
    print(f"{'GROUP':<8}{'MANAGED':<9}{'DESIRED':>8}{'MAX':>5}{'ON-DEMAND':>11}{'SPOT':>6}{'SAVING $/h':>12}")
    total = 0.0
    for g in sorted(groups, key=lambda g: g["AutoScalingGroupName"]):
        tags = {t["Key"]: t["Value"] for t in g.get("Tags", [])}
        od = spot = 0
        saving = 0.0
        for m in g["Instances"]:
            if m["LifecycleState"] != "InService":
                continue
            i = info[m["InstanceId"]]
            if i.get("InstanceLifecycle") == "spot":
                spot += 1
                saving += max(prices.get(i["InstanceType"], 0.0) - MOTO_SPOT_PRICE, 0.0)
            else:
                od += 1
        total += saving
        managed = "yes" if tags.get("spotswap:enabled") == "true" else "no"
        print(f"{g['AutoScalingGroupName']:<8}{managed:<9}{g['DesiredCapacity']:>8}{g['MaxSize']:>5}{od:>11}{spot:>6}{saving:>12.4f}")
    print(f"estimated hourly saving: ${total:.4f}/h (sample on-demand prices; moto's spot price is a constant {MOTO_SPOT_PRICE})")
    state_summary(STATEFUL)


def warning(group):
    """AWS's sample spot interruption warning, about one InService spot instance of `group`."""
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    ids = [m["InstanceId"] for m in g["Instances"] if m["LifecycleState"] == "InService"]
    spot = [
        i["InstanceId"]
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
        for i in r["Instances"]
        if i.get("InstanceLifecycle") == "spot"
    ]
    if not spot:
        sys.exit(f"{group} has no spot instance to interrupt")
    event = json.load(open(os.path.join(os.path.dirname(__file__), "..", "events", "interruption-spot-warning.json")))
    event["detail"]["instance-id"] = sorted(spot)[0]
    event["region"] = REGION
    event["resources"] = [f"arn:aws:ec2:{REGION}:123456789012:instance/{sorted(spot)[0]}"]
    print(json.dumps(event))


def decisions():
    """Print a `spotswap handle-event` report (JSON on stdin) as a table."""
    r = json.load(sys.stdin)
    print(f"{'ACTION':<20}{'REASON':<26}{'INSTANCE':<22}{'POOL':<24}OUTCOME")
    for d in r["decisions"]:
        outcome = d["outcome"]["outcome"] if isinstance(d["outcome"], dict) else d["outcome"]
        print(f"{d['action']:<20}{d['reason']:<26}{d.get('instance') or '':<22}{d.get('pool') or '':<24}{outcome}")
    print(f"replacement requested after {r['calls_before_replacement']} reads")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "summary"
    if cmd == "seed":
        seed()
    elif cmd == "warning":
        warning(sys.argv[2])
    elif cmd == "decisions":
        decisions()
    else:
        summary(sys.argv[2] if len(sys.argv) > 2 else "fleet")
