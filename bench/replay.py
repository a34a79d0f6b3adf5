#!/usr/bin/env python3
"""A read-only, synthetic AWS API server: one region of 1,000 Auto Scaling groups, 20,000 instances.

    replay.py --port PORT [--groups 1000] [--per-group 20] [--scenario steady|busy] [--seed 1]

What
    A stand-in for the EC2, EC2 Auto Scaling and Price List endpoints of one region, speaking
    the same wire protocols as AWS (EC2 query / awsQuery XML, JSON 1.1), so that the real
    aws-sdk-rust clients inside `spotswap plan` can run a whole cycle against it:

        AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_REGION=us-east-1 \\
        AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \\
        SPOTSWAP_PRICE_FILE=prices/sample-on-demand.json target/debug/spotswap plan

    The region is generated once at start-up, deterministically from --seed (identifiers,
    types, spot prices, tags; times are relative to the start-up instant):

      - 3 AZs us-east-1a/b/c, one VPC, one subnet per AZ;
      - groups bench-0000 .. bench-(G-1), each with its own launch template (Version
        $Default), MinSize 0, MaxSize per-group+5, DesiredCapacity per-group,
        HealthCheckGracePeriod 0, VPCZoneIdentifier the 3 subnets, and the tags
        spotswap:enabled=true and spotswap:on-demand-base=1 (not propagated), Name, team
        and env (propagated);
      - per group, `per-group` members spread round-robin over the 3 AZs, all InService and
        Healthy, each a running instance (one reservation per instance, as the group's
        one-at-a-time RunInstances launches make them) tagged aws:autoscaling:groupName;
      - 15 instance types (x86_64 and arm64), one Linux/UNIX spot price per (type, AZ) pool,
        25-45 % of an approximate on-demand price.

    Scenarios
      steady  every group already at its target: one on-demand instance (the risk floor,
              spotswap:on-demand-base=1) and the rest spot, the spot ones carrying the
              spotswap:* tags a finished swap leaves (group, replaces: an instance long gone,
              launched-at, attached-at). The planner has nothing to start: the idle cycle
              that runs every few minutes for the life of a deployment.
      busy    every group all on-demand, floor 1, default replace-per-cycle 1: every group
              starts one swap, so the preflight reads DescribeInstanceRefreshes per group and
              DescribeInstanceAttribute per chosen instance.

Why
    moto is the project's AWS for tests and the demo, but it cannot hold a region of this
    size in reasonable time: every instance and group is built through its full object model
    by API calls, it is single-threaded, it serializes every answer afresh from those objects,
    and its DescribeInstances ignores MaxResults (README): the 20 pages a real cycle reads
    would come back as one answer of the whole region, so neither the call counts nor the
    per-page costs would be the real ones. A benchmark at full size against moto would time
    moto. This server holds the region as pre-rendered XML: every page of the listings a
    cycle reads is rendered once at start-up and served from memory, so a 1,000-instance page
    (about 4.7 MB: each instance carries the elements a real one does) costs a dictionary
    look-up and a socket write, and the time measured is spotswap's (the SDK's parsing, the
    planner) plus the loopback.

Read-only
    Nothing here changes. Only the actions listed under Served are answered; any other
    (CreateFleet, AttachInstances, CreateTags, PutEvents, or a read not served) is answered
    HTTP 400 with the service's own error shape, code InvalidAction (EC2 and Auto Scaling,
    XML) or AccessDeniedException (JSON services), a message naming it, and counted. Which
    actions read is not this server's to judge (spotswap_core::ops is the one rule; run.py
    asks `spotswap-proxy --classify`).
    `spotswap plan` is a dry run and makes none; a `rebalance` against this server fails
    every mutation, which is a way to see which mutations a cycle would make.

Served
    ec2          DescribeInstances (MaxResults pages, InstanceId.N, filters
                 instance-state-name, tag-key, tag:K, instance-id, instance-type,
                 availability-zone, subnet-id, vpc-id, instance-lifecycle),
                 DescribeInstanceStatus, DescribeInstanceAttribute, DescribeSpotPriceHistory,
                 DescribeInstanceTypes, DescribeSubnets, DescribeAvailabilityZones
    autoscaling  DescribeAutoScalingGroups (MaxRecords pages, names, filters tag-key,
                 tag-value, tag:K), DescribeAutoScalingInstances, DescribeInstanceRefreshes
                 (none), DescribeLifecycleHooks (none)
    pricing      every operation: HTTP 400 AccessDeniedException, so the tool falls back to
                 SPOTSWAP_PRICE_FILE as it does on AWS when the Price List API cannot be read
    The service of a query request is told from its Version (2016-11-15 EC2, 2011-01-01 Auto
    Scaling), else from the credential scope of its Authorization header; a JSON request's
    from its X-Amz-Target prefix.

Control paths
    GET  /_counts  {"ec2:DescribeInstances": 20, "autoscaling:DescribeAutoScalingGroups": 10,
                   ...}: calls served since start or the last reset, errors included, IAM
                   spelling (`ec2:`, `autoscaling:`, `pricing:`, `events:`).
    POST /_reset   zero the counts.

Serving
    ThreadingHTTPServer, HTTP/1.1 keep-alive, Content-Length on every answer, TCP_NODELAY
    (a body written after its headers must not wait for a delayed ACK). A paginated answer is
    cached as the bytes around its request id, so each answer still carries a fresh
    request id. The start-up line on stdout,
        replay: listening on http://127.0.0.1:PORT (G groups, N instances, scenario S)
    is printed (and flushed) once every page is rendered; start-up timings go to stderr.
    --port 0 picks a free port (the line says which). --verbose logs one line per request on
    stderr: client port (one per connection), service:Action, status, bytes, and the time
    from the request's headers to the last byte handed to the kernel.

Not modelled
    Time does not pass: the region is the same at every call (a `rebalance` cannot make
    progress anyway, every mutation fails). DescribeSpotPriceHistory ignores StartTime and
    EndTime and answers the one current price of each pool (the answer AWS gives for
    StartTime = now, as spotswap asks), Linux/UNIX only. No stopped or pending instances,
    no instance refreshes, no lifecycle hooks, no throttling (target/release/spotswap-proxy can sit
    in front for that). A real region lists more instance types and spot pools: here the
    spot price history is one page of 45 pools.

Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

# --------------------------------------------------------------------------------------------
# Constants of the synthetic region
# --------------------------------------------------------------------------------------------

REGION = "us-east-1"
ACCOUNT = "123456789012"
# The account EC2 Auto Scaling launches from: the requesterId of the reservations it makes.
ASG_REQUESTER = "940372691376"
AZS = [("us-east-1a", "use1-az1"), ("us-east-1b", "use1-az2"), ("us-east-1c", "use1-az4")]

EC2_VERSION = "2016-11-15"
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
ASG_VERSION = "2011-01-01"
ASG_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"

READ_ONLY = "replay server is read-only"
PRICING_MESSAGE = "replay: the Price List API is not served; prices come from SPOTSWAP_PRICE_FILE"

# X-Amz-Target prefixes of the JSON-protocol services a spotswap binary may call.
JSON_TARGETS = {"AWSPriceListService": "pricing", "AWSEvents": "events"}


@dataclass(frozen=True)
class TypeSpec:
    """One instance type as DescribeInstanceTypes describes it (only what matters here)."""

    name: str
    arch: str  # x86_64 | arm64
    cores: int
    threads: int  # per core
    memory_mib: int
    store_gb: int  # 0: EBS only
    # Approximate Linux on-demand USD/hour: used ONLY to derive spot prices. The server does
    # not serve on-demand prices; the tool reads them from SPOTSWAP_PRICE_FILE.
    od_price: float
    manufacturer: str
    clock_ghz: float
    network: str
    burstable: bool = False

    @property
    def vcpus(self) -> int:
        return self.cores * self.threads


TYPES = [
    TypeSpec("m5.large", "x86_64", 1, 2, 8192, 0, 0.096, "Intel", 3.1, "Up to 10 Gigabit"),
    TypeSpec("m5a.large", "x86_64", 1, 2, 8192, 0, 0.086, "AMD", 2.5, "Up to 10 Gigabit"),
    TypeSpec("m6i.large", "x86_64", 1, 2, 8192, 0, 0.096, "Intel", 3.5, "Up to 12.5 Gigabit"),
    TypeSpec("m6a.large", "x86_64", 1, 2, 8192, 0, 0.0864, "AMD", 3.6, "Up to 12.5 Gigabit"),
    TypeSpec("m5d.large", "x86_64", 1, 2, 8192, 75, 0.113, "Intel", 3.1, "Up to 10 Gigabit"),
    TypeSpec("c5.large", "x86_64", 1, 2, 4096, 0, 0.085, "Intel", 3.4, "Up to 10 Gigabit"),
    TypeSpec("c5a.large", "x86_64", 1, 2, 4096, 0, 0.077, "AMD", 3.3, "Up to 10 Gigabit"),
    TypeSpec("c6i.large", "x86_64", 1, 2, 4096, 0, 0.085, "Intel", 3.5, "Up to 12.5 Gigabit"),
    TypeSpec("r5.large", "x86_64", 1, 2, 16384, 0, 0.126, "Intel", 3.1, "Up to 10 Gigabit"),
    TypeSpec("m5.xlarge", "x86_64", 2, 2, 16384, 0, 0.192, "Intel", 3.1, "Up to 10 Gigabit"),
    TypeSpec("c5.xlarge", "x86_64", 2, 2, 8192, 0, 0.17, "Intel", 3.4, "Up to 10 Gigabit"),
    TypeSpec("m6i.xlarge", "x86_64", 2, 2, 16384, 0, 0.192, "Intel", 3.5, "Up to 12.5 Gigabit"),
    TypeSpec("t3.large", "x86_64", 1, 2, 8192, 0, 0.0832, "Intel", 2.5, "Up to 5 Gigabit", True),
    TypeSpec("m6g.large", "arm64", 2, 1, 8192, 0, 0.077, "AWS", 2.5, "Up to 10 Gigabit"),
    TypeSpec("c6g.large", "arm64", 2, 1, 4096, 0, 0.068, "AWS", 2.5, "Up to 10 Gigabit"),
]
TYPE_BY_NAME = {t.name: t for t in TYPES}

# The types a group is created with, weighted toward the usual general-purpose ones. All
# have an on-demand price in prices/sample-on-demand.json (c5a.large and c6g.large do not:
# they appear only as spot replacements).
GROUP_TYPES = (
    ["m5.large"] * 6 + ["m6i.large"] * 3 + ["m5a.large"] * 2 + ["c5.large"] * 3
    + ["c6i.large"] * 2 + ["r5.large"] * 2 + ["m5.xlarge"] * 2 + ["c5.xlarge", "m6i.xlarge"]
    + ["t3.large"] * 2 + ["m5d.large", "m6a.large"] + ["m6g.large"] * 2
)
TEAMS = ["payments", "search", "checkout", "identity", "catalog", "media", "ads", "data"]


def boot_modes(t: TypeSpec) -> list[str]:
    """SupportedBootModes as render_type serves them."""
    return ["uefi"] if t.arch == "arm64" else ["legacy-bios", "uefi"]


def compatible(orig: TypeSpec, cand: TypeSpec) -> bool:
    """The planner's rule (crates/core/src/compat.rs `compatible`) for what this server serves:
    same arch, at least as big, and a burstable type only for a burstable original (no group
    here has an allowed-types glob). No type here has a GPU or EBS bandwidth figures, every
    type requires ENA and NVMe, and an instance reports no boot mode, so those rules reduce to
    "the candidate supports every boot mode of the original's type". tests/bench_rules.rs
    checks this copy against the core's rule for every pair of TYPES (`--dump-compatible`)."""
    return (
        cand.arch == orig.arch
        and cand.vcpus >= orig.vcpus
        and cand.memory_mib >= orig.memory_mib
        and (orig.store_gb == 0 or cand.store_gb >= orig.store_gb)
        and set(boot_modes(orig)) <= set(boot_modes(cand))
        and (not cand.burstable or orig.burstable)
    )


def iso(ts: int) -> str:
    """EC2 / Auto Scaling timestamp format: 2026-11-20T10:00:00.000Z."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def rfc3339(ts: int) -> str:
    """spotswap's tag timestamp format: 2026-11-20T10:00:00Z."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def e(s: object) -> str:
    """XML text escape."""
    return escape(str(s))


def tag_items(tags: list[tuple[str, str]]) -> str:
    return "".join(f"<item><key>{e(k)}</key><value>{e(v)}</value></item>" for k, v in tags)


# --------------------------------------------------------------------------------------------
# The region model
# --------------------------------------------------------------------------------------------


@dataclass
class Inst:
    id: str
    type: str
    az: str
    az_id: str
    subnet: str
    vpc: str
    ip: str
    launch: int
    spot: bool
    group: str
    lt_id: str
    lt_name: str
    image: str
    reservation: str
    eni: str
    mac: str
    volume: str
    sg: str
    client_token: str
    spot_request: str | None
    tags: list[tuple[str, str]]
    xml: bytes = b""  # the <item> of reservationSet, pre-rendered


@dataclass
class Group:
    name: str
    lt_id: str
    lt_name: str
    created: int
    type: str
    desired: int
    max_size: int
    # (key, value, propagate-at-launch)
    tags: list[tuple[str, str, bool]]
    members: list[Inst] = field(default_factory=list)
    xml: bytes = b""  # the <member> of AutoScalingGroups, pre-rendered

    def has_tag(self, key: str, values: list[str] | None = None) -> bool:
        return any(k == key and (values is None or v in values) for k, v, _ in self.tags)


class Region:
    """The whole synthetic region, generated from a seed."""

    def __init__(self, groups: int, per_group: int, scenario: str, seed: int, now: int):
        rng = random.Random(seed)
        self.now = now
        self.scenario = scenario
        used: set[str] = set()

        def rid(prefix: str, bits: int = 68, width: int = 17) -> str:
            # i-/vol-/eni-/... ids: 17 lower-case hex digits, unique across the region.
            while True:
                s = f"{prefix}-{rng.getrandbits(bits):0{width}x}"
                if s not in used:
                    used.add(s)
                    return s

        def token() -> str:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        self.vpc = rid("vpc")
        self.sg = rid("sg")
        self.images = {"x86_64": rid("ami"), "arm64": rid("ami")}
        # one /18 per AZ: 10.0.0.0/18, 10.0.64.0/18, 10.0.128.0/18
        self.subnets = [
            {"id": rid("subnet"), "az": az, "az_id": az_id, "cidr": f"10.0.{64 * k}.0/18", "next": 4}
            for k, (az, az_id) in enumerate(AZS)
        ]

        def next_ip(sub: dict) -> str:
            n = sub["next"]
            sub["next"] += 1
            base = int(sub["cidr"].split(".")[2])
            return f"10.0.{base + n // 256}.{n % 256}"

        # One spot price per (type, AZ) pool, a stable fraction of the on-demand price.
        self.spot_prices: dict[tuple[str, str], float] = {}
        self.spot_stamps: dict[tuple[str, str], int] = {}
        for t in TYPES:
            for az, _ in AZS:
                self.spot_prices[(t.name, az)] = round(t.od_price * rng.uniform(0.25, 0.45), 4)
                self.spot_stamps[(t.name, az)] = now - rng.randint(60, 6 * 3600)

        self.groups: list[Group] = []
        self.instances: list[Inst] = []
        for g in range(groups):
            name = f"bench-{g:04d}"
            gtype = rng.choice(GROUP_TYPES)
            spec = TYPE_BY_NAME[gtype]
            team, env = rng.choice(TEAMS), rng.choice(["prod", "prod", "staging"])
            grp = Group(
                name=name,
                lt_id=rid("lt"),
                lt_name=f"{name}-lt",
                created=now - rng.randint(30, 400) * 86400,
                type=gtype,
                desired=per_group,
                max_size=per_group + 5,
                tags=[
                    ("Name", name, True),
                    ("env", env, True),
                    ("spotswap:enabled", "true", False),
                    ("spotswap:on-demand-base", "1", False),
                    ("team", team, True),
                ],
            )
            # Spot replacements seen in steady state: per AZ, the compatible types whose spot
            # price is at most the group type's on-demand price (the planner's candidates).
            spot_types = {
                az: [t.name for t in TYPES
                     if compatible(spec, t) and self.spot_prices[(t.name, az)] <= spec.od_price]
                for az, _ in AZS
            }
            for k in range(per_group):
                az_index = (g + k) % len(AZS)
                sub = self.subnets[az_index]
                spot = scenario == "steady" and k > 0
                itype = gtype
                if spot:
                    itype = rng.choice(spot_types[sub["az"]])
                iid = rid("i")
                if spot:
                    # Launched by spotswap (CreateFleet instant), attached a few minutes later;
                    # the on-demand instance it replaced is long gone.
                    launch = now - rng.randint(3600, 10 * 86400)
                    replaced = rid("i")
                    fleet = f"fleet-{token()}"
                    tags = [
                        ("Name", name),
                        ("aws:autoscaling:groupName", name),
                        ("aws:ec2:fleet-id", fleet),
                        ("aws:ec2launchtemplate:id", grp.lt_id),
                        ("aws:ec2launchtemplate:version", "1"),
                        ("env", env),
                        ("spotswap:attached-at", rfc3339(launch + rng.randint(120, 300))),
                        ("spotswap:group", name),
                        ("spotswap:launched-at", rfc3339(launch)),
                        ("spotswap:replaces", replaced),
                        ("team", team),
                    ]
                    client_token = f"spotswap-{replaced}-{launch // 600}"
                    spot_request = f"sir-{rng.getrandbits(40):010x}"[:12]
                else:
                    launch = now - rng.randint(2 * 3600, 21 * 86400)
                    tags = [
                        ("Name", name),
                        ("aws:autoscaling:groupName", name),
                        ("aws:ec2launchtemplate:id", grp.lt_id),
                        ("aws:ec2launchtemplate:version", "1"),
                        ("env", env),
                        ("team", team),
                    ]
                    client_token = token().upper()
                    spot_request = None
                inst = Inst(
                    id=iid,
                    type=itype,
                    az=sub["az"],
                    az_id=sub["az_id"],
                    subnet=sub["id"],
                    vpc=self.vpc,
                    ip=next_ip(sub),
                    launch=launch,
                    spot=spot,
                    group=name,
                    lt_id=grp.lt_id,
                    lt_name=grp.lt_name,
                    image=self.images[TYPE_BY_NAME[itype].arch],
                    reservation=rid("r"),
                    eni=rid("eni"),
                    mac=":".join(f"{rng.getrandbits(8):02x}" for _ in range(6)),
                    volume=rid("vol"),
                    sg=self.sg,
                    client_token=client_token,
                    spot_request=spot_request,
                    tags=tags,
                )
                grp.members.append(inst)
                self.instances.append(inst)
            self.groups.append(grp)

        # DescribeInstances lists in no group order on AWS: shuffle, deterministically.
        rng.shuffle(self.instances)
        self.by_id = {i.id: i for i in self.instances}
        self.group_by_name = {g.name: g for g in self.groups}
        for i in self.instances:
            i.xml = render_reservation(i).encode()
        for g in self.groups:
            g.xml = render_group(g, self.subnets).encode()
        self.type_xml = {t.name: render_type(t).encode() for t in TYPES}
        # Pools in a stable order: type, then AZ.
        self.pools = sorted(self.spot_prices)


# --------------------------------------------------------------------------------------------
# XML rendering: the shapes aws-sdk-rust's deserializers read (element names as in the
# protocol_serde modules of aws-sdk-ec2 / aws-sdk-autoscaling), filled the way AWS fills them.
# --------------------------------------------------------------------------------------------


def render_reservation(i: Inst) -> str:
    """One reservationSet <item> holding one instance (an ASG or CreateFleet launch of one)."""
    spec = TYPE_BY_NAME[i.type]
    t = iso(i.launch)
    dns = f"ip-{i.ip.replace('.', '-')}.ec2.internal"
    sg = f"<groupSet><item><groupId>{i.sg}</groupId><groupName>bench-app</groupName></item></groupSet>"
    spot = (
        f"<instanceLifecycle>spot</instanceLifecycle><spotInstanceRequestId>{i.spot_request}</spotInstanceRequestId>"
        if i.spot
        else ""
    )
    requester = "" if i.spot else f"<requesterId>{ASG_REQUESTER}</requesterId>"
    return (
        f"<item><reservationId>{i.reservation}</reservationId><ownerId>{ACCOUNT}</ownerId>{requester}<groupSet/>"
        "<instancesSet><item>"
        f"<instanceId>{i.id}</instanceId><imageId>{i.image}</imageId>"
        "<instanceState><code>16</code><name>running</name></instanceState>"
        f"<privateDnsName>{dns}</privateDnsName><dnsName/><reason/>"
        "<amiLaunchIndex>0</amiLaunchIndex><productCodes/>"
        f"<instanceType>{i.type}</instanceType><launchTime>{t}</launchTime>"
        f"<placement><availabilityZoneId>{i.az_id}</availabilityZoneId><availabilityZone>{i.az}</availabilityZone>"
        "<groupName/><tenancy>default</tenancy></placement>"
        "<monitoring><state>disabled</state></monitoring>"
        f"<subnetId>{i.subnet}</subnetId><vpcId>{i.vpc}</vpcId><privateIpAddress>{i.ip}</privateIpAddress>"
        f"<sourceDestCheck>true</sourceDestCheck>{sg}"
        f"<architecture>{spec.arch}</architecture>"
        "<rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName>"
        "<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName>"
        f"<ebs><volumeId>{i.volume}</volumeId><status>attached</status><attachTime>{t}</attachTime>"
        "<deleteOnTermination>true</deleteOnTermination></ebs></item></blockDeviceMapping>"
        f"{spot}<virtualizationType>hvm</virtualizationType><clientToken>{e(i.client_token)}</clientToken>"
        f"<tagSet>{tag_items(i.tags)}</tagSet><hypervisor>xen</hypervisor>"
        "<networkInterfaceSet><item>"
        f"<networkInterfaceId>{i.eni}</networkInterfaceId><subnetId>{i.subnet}</subnetId><vpcId>{i.vpc}</vpcId>"
        f"<description/><ownerId>{ACCOUNT}</ownerId><status>in-use</status><macAddress>{i.mac}</macAddress>"
        f"<privateIpAddress>{i.ip}</privateIpAddress><privateDnsName>{dns}</privateDnsName>"
        f"<sourceDestCheck>true</sourceDestCheck>{sg}"
        f"<attachment><attachmentId>eni-attach-{i.eni[4:]}</attachmentId><deviceIndex>0</deviceIndex>"
        f"<networkCardIndex>0</networkCardIndex><status>attached</status><attachTime>{t}</attachTime>"
        "<deleteOnTermination>true</deleteOnTermination></attachment>"
        f"<privateIpAddressesSet><item><privateIpAddress>{i.ip}</privateIpAddress>"
        f"<privateDnsName>{dns}</privateDnsName><primary>true</primary></item></privateIpAddressesSet>"
        "<interfaceType>interface</interfaceType></item></networkInterfaceSet>"
        f"<iamInstanceProfile><arn>arn:aws:iam::{ACCOUNT}:instance-profile/bench-app</arn>"
        "<id>AIPAREPLAYBENCHAPP0001</id></iamInstanceProfile>"
        "<ebsOptimized>true</ebsOptimized><enaSupport>true</enaSupport>"
        f"<cpuOptions><coreCount>{spec.cores}</coreCount><threadsPerCore>{spec.threads}</threadsPerCore></cpuOptions>"
        "<capacityReservationSpecification><capacityReservationPreference>open</capacityReservationPreference>"
        "</capacityReservationSpecification>"
        "<hibernationOptions><configured>false</configured></hibernationOptions>"
        "<metadataOptions><state>applied</state><httpTokens>required</httpTokens>"
        "<httpPutResponseHopLimit>2</httpPutResponseHopLimit><httpEndpoint>enabled</httpEndpoint>"
        "<instanceMetadataTags>disabled</instanceMetadataTags></metadataOptions>"
        "<enclaveOptions><enabled>false</enabled></enclaveOptions>"
        "<bootMode>uefi-preferred</bootMode><platformDetails>Linux/UNIX</platformDetails>"
        f"<usageOperation>RunInstances</usageOperation><usageOperationUpdateTime>{t}</usageOperationUpdateTime>"
        "<privateDnsNameOptions><hostnameType>ip-name</hostnameType>"
        "<enableResourceNameDnsARecord>false</enableResourceNameDnsARecord>"
        "<enableResourceNameDnsAAAARecord>false</enableResourceNameDnsAAAARecord></privateDnsNameOptions>"
        "<maintenanceOptions><autoRecovery>default</autoRecovery></maintenanceOptions>"
        "<currentInstanceBootMode>uefi</currentInstanceBootMode>"
        "</item></instancesSet></item>"
    )


def render_asg_member(i: Inst) -> str:
    """One member of a group's Instances, as DescribeAutoScalingGroups lists it."""
    return (
        f"<member><InstanceId>{i.id}</InstanceId><InstanceType>{i.type}</InstanceType>"
        f"<AvailabilityZone>{i.az}</AvailabilityZone><AvailabilityZoneId>{i.az_id}</AvailabilityZoneId>"
        "<LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus>"
        f"<LaunchTemplate><LaunchTemplateId>{i.lt_id}</LaunchTemplateId>"
        f"<LaunchTemplateName>{e(i.lt_name)}</LaunchTemplateName><Version>1</Version></LaunchTemplate>"
        "<ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>"
    )


def render_group(g: Group, subnets: list[dict]) -> str:
    """One member of AutoScalingGroups."""
    arn = (
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:"
        f"{uuid.UUID(int=zlib.crc32(g.name.encode()) << 64, version=4)}:autoScalingGroupName/{g.name}"
    )
    tags = "".join(
        f"<member><ResourceId>{e(g.name)}</ResourceId><ResourceType>auto-scaling-group</ResourceType>"
        f"<Key>{e(k)}</Key><Value>{e(v)}</Value><PropagateAtLaunch>{str(p).lower()}</PropagateAtLaunch></member>"
        for k, v, p in g.tags
    )
    azs = "".join(f"<member>{az}</member>" for az, _ in AZS)
    return (
        f"<member><AutoScalingGroupName>{e(g.name)}</AutoScalingGroupName>"
        f"<AutoScalingGroupARN>{e(arn)}</AutoScalingGroupARN>"
        f"<LaunchTemplate><LaunchTemplateId>{g.lt_id}</LaunchTemplateId>"
        f"<LaunchTemplateName>{e(g.lt_name)}</LaunchTemplateName><Version>$Default</Version></LaunchTemplate>"
        f"<MinSize>0</MinSize><MaxSize>{g.max_size}</MaxSize><DesiredCapacity>{g.desired}</DesiredCapacity>"
        f"<DefaultCooldown>300</DefaultCooldown><AvailabilityZones>{azs}</AvailabilityZones>"
        "<LoadBalancerNames/><TargetGroupARNs/><HealthCheckType>EC2</HealthCheckType>"
        "<HealthCheckGracePeriod>0</HealthCheckGracePeriod>"
        f"<Instances>{''.join(render_asg_member(i) for i in g.members)}</Instances>"
        f"<CreatedTime>{iso(g.created)}</CreatedTime><SuspendedProcesses/>"
        f"<VPCZoneIdentifier>{','.join(s['id'] for s in subnets)}</VPCZoneIdentifier>"
        f"<EnabledMetrics/><Tags>{tags}</Tags>"
        "<TerminationPolicies><member>Default</member></TerminationPolicies>"
        "<NewInstancesProtectedFromScaleIn>false</NewInstancesProtectedFromScaleIn>"
        f"<ServiceLinkedRoleARN>arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/"
        "AWSServiceRoleForAutoScaling</ServiceLinkedRoleARN>"
        "<CapacityRebalance>false</CapacityRebalance></member>"
    )


def render_type(t: TypeSpec) -> str:
    """One instanceTypeSet <item>."""
    store = (
        "<instanceStorageSupported>true</instanceStorageSupported>"
        f"<instanceStorageInfo><totalSizeInGB>{t.store_gb}</totalSizeInGB><disks><item>"
        f"<sizeInGB>{t.store_gb}</sizeInGB><count>1</count><type>ssd</type></item></disks>"
        "<nvmeSupport>required</nvmeSupport><encryptionSupport>required</encryptionSupport></instanceStorageInfo>"
        if t.store_gb
        else "<instanceStorageSupported>false</instanceStorageSupported>"
    )
    boot = "".join(f"<item>{m}</item>" for m in boot_modes(t))
    return (
        f"<item><instanceType>{t.name}</instanceType><currentGeneration>true</currentGeneration>"
        "<freeTierEligible>false</freeTierEligible>"
        "<supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>"
        "<supportedRootDeviceTypes><item>ebs</item></supportedRootDeviceTypes>"
        "<supportedVirtualizationTypes><item>hvm</item></supportedVirtualizationTypes>"
        "<bareMetal>false</bareMetal><hypervisor>nitro</hypervisor>"
        f"<processorInfo><supportedArchitectures><item>{t.arch}</item></supportedArchitectures>"
        f"<sustainedClockSpeedInGhz>{t.clock_ghz}</sustainedClockSpeedInGhz>"
        f"<manufacturer>{t.manufacturer}</manufacturer></processorInfo>"
        f"<vCpuInfo><defaultVCpus>{t.vcpus}</defaultVCpus><defaultCores>{t.cores}</defaultCores>"
        f"<defaultThreadsPerCore>{t.threads}</defaultThreadsPerCore></vCpuInfo>"
        f"<memoryInfo><sizeInMiB>{t.memory_mib}</sizeInMiB></memoryInfo>{store}"
        "<ebsInfo><ebsOptimizedSupport>default</ebsOptimizedSupport><encryptionSupport>supported</encryptionSupport>"
        "<nvmeSupport>required</nvmeSupport></ebsInfo>"
        f"<networkInfo><networkPerformance>{t.network}</networkPerformance>"
        "<maximumNetworkInterfaces>3</maximumNetworkInterfaces><maximumNetworkCards>1</maximumNetworkCards>"
        "<defaultNetworkCardIndex>0</defaultNetworkCardIndex><enaSupport>required</enaSupport>"
        "<efaSupported>false</efaSupported></networkInfo>"
        "<placementGroupInfo><supportedStrategies><item>cluster</item><item>partition</item>"
        "<item>spread</item></supportedStrategies></placementGroupInfo>"
        f"<hibernationSupported>true</hibernationSupported>"
        f"<burstablePerformanceSupported>{str(t.burstable).lower()}</burstablePerformanceSupported>"
        "<dedicatedHostsSupported>true</dedicatedHostsSupported><autoRecoverySupported>true</autoRecoverySupported>"
        f"<supportedBootModes>{boot}</supportedBootModes></item>"
    )


def render_spot_price(region: Region, pool: tuple[str, str]) -> str:
    ty, az = pool
    az_id = dict(AZS)[az]
    return (
        f"<item><availabilityZone>{az}</availabilityZone><availabilityZoneId>{az_id}</availabilityZoneId>"
        f"<instanceType>{ty}</instanceType><productDescription>Linux/UNIX</productDescription>"
        f"<spotPrice>{region.spot_prices[pool]:.6f}</spotPrice><timestamp>{iso(region.spot_stamps[pool])}</timestamp></item>"
    )


def render_status(i: Inst) -> str:
    ok = "<status>ok</status><details><item><name>reachability</name><status>passed</status></item></details>"
    return (
        f"<item><instanceId>{i.id}</instanceId><availabilityZone>{i.az}</availabilityZone>"
        f"<availabilityZoneId>{i.az_id}</availabilityZoneId><eventsSet/>"
        "<instanceState><code>16</code><name>running</name></instanceState>"
        f"<systemStatus>{ok}</systemStatus><instanceStatus>{ok}</instanceStatus>"
        f"<attachedEbsStatus>{ok}</attachedEbsStatus></item>"
    )


def render_subnet(s: dict) -> str:
    return (
        f"<item><subnetId>{s['id']}</subnetId><subnetArn>arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s['id']}</subnetArn>"
        f"<state>available</state><ownerId>{ACCOUNT}</ownerId><vpcId>{s['vpc']}</vpcId>"
        f"<cidrBlock>{s['cidr']}</cidrBlock><availableIpAddressCount>{16379 - s['next']}</availableIpAddressCount>"
        f"<availabilityZone>{s['az']}</availabilityZone><availabilityZoneId>{s['az_id']}</availabilityZoneId>"
        "<defaultForAz>false</defaultForAz><mapPublicIpOnLaunch>false</mapPublicIpOnLaunch>"
        f"<tagSet><item><key>Name</key><value>bench-private-{s['az'][-1]}</value></item></tagSet></item>"
    )


def render_az(az: str, az_id: str) -> str:
    return (
        f"<item><zoneName>{az}</zoneName><zoneId>{az_id}</zoneId><zoneState>available</zoneState>"
        f"<regionName>{REGION}</regionName><groupName>{REGION}-zg-1</groupName>"
        f"<networkBorderGroup>{REGION}</networkBorderGroup><optInStatus>opt-in-not-required</optInStatus>"
        "<zoneType>availability-zone</zoneType><messageSet/></item>"
    )


def render_asg_instance(i: Inst) -> str:
    """One AutoScalingInstances member (DescribeAutoScalingInstances)."""
    return (
        f"<member><InstanceId>{i.id}</InstanceId><InstanceType>{i.type}</InstanceType>"
        f"<AutoScalingGroupName>{e(i.group)}</AutoScalingGroupName><AvailabilityZone>{i.az}</AvailabilityZone>"
        "<LifecycleState>InService</LifecycleState><HealthStatus>HEALTHY</HealthStatus>"
        f"<LaunchTemplate><LaunchTemplateId>{i.lt_id}</LaunchTemplateId>"
        f"<LaunchTemplateName>{e(i.lt_name)}</LaunchTemplateName><Version>1</Version></LaunchTemplate>"
        "<ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>"
    )


# --------------------------------------------------------------------------------------------
# Envelopes and errors
# --------------------------------------------------------------------------------------------

XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


class ApiError(Exception):
    """An AWS error answer: HTTP status, code, message (rendered in the service's shape)."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# A rendered answer: the bytes before and after the request id, so a cached page can still
# carry a fresh request id per answer.
Answer = tuple[bytes, bytes]


def ec2_answer(action: str, inner: str | bytes) -> Answer:
    """EC2 query protocol: <XResponse xmlns=...><requestId>..</requestId>...</XResponse>."""
    inner_b = inner.encode() if isinstance(inner, str) else inner
    head = f'{XML_DECL}<{action}Response xmlns="{EC2_NS}"><requestId>'.encode()
    return head, b"</requestId>" + inner_b + f"</{action}Response>".encode()


def asg_answer(action: str, inner: str | bytes) -> Answer:
    """awsQuery: <XResponse xmlns=...><XResult>...</XResult><ResponseMetadata>...</XResponse>."""
    inner_b = inner.encode() if isinstance(inner, str) else inner
    head = f'{XML_DECL}<{action}Response xmlns="{ASG_NS}"><{action}Result>'.encode()
    return (
        head + inner_b + f"</{action}Result><ResponseMetadata><RequestId>".encode(),
        f"</RequestId></ResponseMetadata></{action}Response>".encode(),
    )


def ec2_error(err: ApiError) -> Answer:
    return (
        f"{XML_DECL}<Response><Errors><Error><Code>{e(err.code)}</Code><Message>{e(err.message)}"
        "</Message></Error></Errors><RequestID>".encode(),
        b"</RequestID></Response>",
    )


def asg_error(err: ApiError) -> Answer:
    return (
        f'{XML_DECL}<ErrorResponse xmlns="{ASG_NS}"><Error><Type>Sender</Type><Code>{e(err.code)}</Code>'
        f"<Message>{e(err.message)}</Message></Error><RequestId>".encode(),
        b"</RequestId></ErrorResponse>",
    )


# --------------------------------------------------------------------------------------------
# Request parameters and pagination
# --------------------------------------------------------------------------------------------


def indexed(params: dict[str, str], prefix: str) -> list[str]:
    """Values of prefix.1, prefix.2, ... (a query-protocol list), in order."""
    out, n = [], 1
    while f"{prefix}.{n}" in params:
        out.append(params[f"{prefix}.{n}"])
        n += 1
    return out


def filters(params: dict[str, str], prefix: str, values: str) -> list[tuple[str, list[str]]]:
    """EC2: Filter.N.Name / Filter.N.Value.M; Auto Scaling: Filters.member.N.Name /
    Filters.member.N.Values.member.M."""
    out, n = [], 1
    while f"{prefix}.{n}.Name" in params:
        out.append((params[f"{prefix}.{n}.Name"], indexed(params, f"{prefix}.{n}.{values}")))
        n += 1
    return out


def int_param(params: dict[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ApiError("InvalidParameterValue", f"Invalid value '{raw}' for {name}") from None
    if not lo <= v <= hi:
        raise ApiError(
            "InvalidParameterValue", f"Value ({v}) for parameter {name} is invalid. Expected {lo}-{hi}."
        )
    return v


def query_key(action: str, fs: list[tuple[str, list[str]]], extra: tuple = ()) -> str:
    """A canonical string for a listing query (without its NextToken/page size)."""
    return json.dumps([action, sorted((n, sorted(v)) for n, v in fs), list(extra)])


def page_bounds(total: int, size: int | None, token: str | None, key: str) -> tuple[int, int, str | None]:
    """(start, end, next token or None) of the page `token` names. Tokens are opaque to the
    client: `replay.<crc of the query>.<offset>`; one of another query is refused, as AWS
    refuses a token reused with different parameters."""
    fp = f"{zlib.crc32(key.encode()):08x}"
    start = 0
    if token:
        m = re.fullmatch(r"replay\.([0-9a-f]{8})\.(\d+)", token)
        if not m or m.group(1) != fp or int(m.group(2)) >= max(total, 1):
            raise ApiError("InvalidNextToken", "The specified token is invalid or has expired.")
        start = int(m.group(2))
    end = total if size is None else min(total, start + size)
    return start, end, (f"replay.{fp}.{end}" if end < total else None)


class PageCache:
    """Rendered pages of listing queries, by (query, page size, start). Rendering twice in a
    race is harmless (same bytes), so the lock only guards the dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: dict[tuple, Answer] = {}
        self._matches: dict[str, list] = {}

    def matches(self, key: str, compute):
        with self._lock:
            hit = self._matches.get(key)
        if hit is None:
            hit = compute()
            with self._lock:
                self._matches.setdefault(key, hit)
        return hit

    def page(self, key: tuple, render) -> Answer:
        with self._lock:
            hit = self._pages.get(key)
        if hit is None:
            hit = render()
            with self._lock:
                self._pages.setdefault(key, hit)
        return hit

    def size(self) -> tuple[int, int]:
        with self._lock:
            return len(self._pages), sum(len(a) + len(b) for a, b in self._pages.values())


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------


class Api:
    """The read actions, each `params -> Answer` or ApiError."""

    def __init__(self, region: Region):
        self.r = region
        self.cache = PageCache()
        self.ec2 = {
            "DescribeInstances": self.describe_instances,
            "DescribeInstanceStatus": self.describe_instance_status,
            "DescribeInstanceAttribute": self.describe_instance_attribute,
            "DescribeSpotPriceHistory": self.describe_spot_price_history,
            "DescribeInstanceTypes": self.describe_instance_types,
            "DescribeSubnets": self.describe_subnets,
            "DescribeAvailabilityZones": self.describe_availability_zones,
        }
        self.asg = {
            "DescribeAutoScalingGroups": self.describe_auto_scaling_groups,
            "DescribeAutoScalingInstances": self.describe_auto_scaling_instances,
            "DescribeInstanceRefreshes": self.describe_instance_refreshes,
            "DescribeLifecycleHooks": self.describe_lifecycle_hooks,
        }

    # ---- shared listing machinery

    def listing(self, key: str, items, size: int | None, token: str | None, render_page) -> Answer:
        """The page `token` names of the query `key`: `items()` is computed once per query,
        `render_page(items, next_token)` once per page; later calls are dictionary look-ups."""
        matched = self.cache.matches(key, items)
        start, end, nxt = page_bounds(len(matched), size, token, key)
        return self.cache.page((key, size, start), lambda: render_page(matched[start:end], nxt))

    # ---- EC2

    def _instance_filter(self, fs: list[tuple[str, list[str]]]):
        """A predicate for EC2 instance filters. Every instance here is running."""
        preds = []
        for name, vals in fs:
            vs = set(vals)
            if name == "instance-state-name":
                preds.append(lambda i, vs=vs: "running" in vs)
            elif name == "instance-state-code":
                preds.append(lambda i, vs=vs: "16" in vs)
            elif name == "tag-key":
                preds.append(lambda i, vs=vs: any(k in vs for k, _ in i.tags))
            elif name.startswith("tag:"):
                preds.append(lambda i, vs=vs, k=name[4:]: any(tk == k and tv in vs for tk, tv in i.tags))
            elif name in ("instance-id", "instance-type", "availability-zone", "subnet-id", "vpc-id"):
                attr = {"instance-id": "id", "instance-type": "type", "availability-zone": "az",
                        "subnet-id": "subnet", "vpc-id": "vpc"}[name]
                preds.append(lambda i, vs=vs, a=attr: getattr(i, a) in vs)
            elif name == "instance-lifecycle":
                preds.append(lambda i, vs=vs: ("spot" if i.spot else "") in vs)
            else:
                raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
        return lambda i: all(p(i) for p in preds)

    def _by_ids(self, ids: list[str]) -> list[Inst]:
        missing = [i for i in ids if i not in self.r.by_id]
        if missing:
            raise ApiError(
                "InvalidInstanceID.NotFound", f"The instance IDs '{', '.join(missing)}' do not exist"
            )
        return [self.r.by_id[i] for i in dict.fromkeys(ids)]

    def describe_instances(self, p: dict[str, str]) -> Answer:
        ids = indexed(p, "InstanceId")
        fs = filters(p, "Filter", "Value")
        pred = self._instance_filter(fs)
        if ids:
            if "MaxResults" in p:
                raise ApiError(
                    "InvalidParameterCombination",
                    "The parameter instancesSet cannot be used with the parameter maxResults",
                )
            found = b"".join(i.xml for i in self._by_ids(ids) if pred(i))
            return ec2_answer("DescribeInstances", b"<reservationSet>" + found + b"</reservationSet>")
        size = int_param(p, "MaxResults", None, 5, 1000)  # none: everything in one answer

        def render(page: list[Inst], nxt: str | None) -> Answer:
            tail = f"<nextToken>{nxt}</nextToken>" if nxt else ""
            return ec2_answer(
                "DescribeInstances",
                b"<reservationSet>" + b"".join(i.xml for i in page) + b"</reservationSet>" + tail.encode(),
            )

        key = query_key("DescribeInstances", fs)
        return self.listing(key, lambda: [i for i in self.r.instances if pred(i)],
                            size, p.get("NextToken"), render)

    def describe_instance_status(self, p: dict[str, str]) -> Answer:
        ids = indexed(p, "InstanceId")
        fs = filters(p, "Filter", "Value")
        for name, _ in fs:
            if name not in ("availability-zone", "instance-state-name", "instance-status.status",
                            "system-status.status"):
                raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
        if ids:
            body = "".join(render_status(i) for i in self._by_ids(ids))
            return ec2_answer("DescribeInstanceStatus", f"<instanceStatusSet>{body}</instanceStatusSet>")
        size = int_param(p, "MaxResults", 1000, 5, 1000)

        def render(page: list[Inst], nxt: str | None) -> Answer:
            tail = f"<nextToken>{nxt}</nextToken>" if nxt else ""
            body = "".join(render_status(i) for i in page)
            return ec2_answer("DescribeInstanceStatus", f"<instanceStatusSet>{body}</instanceStatusSet>{tail}")

        return self.listing(query_key("DescribeInstanceStatus", []),
                            lambda: list(self.r.instances), size, p.get("NextToken"), render)

    def describe_instance_attribute(self, p: dict[str, str]) -> Answer:
        iid, attr = p.get("InstanceId", ""), p.get("Attribute", "")
        inst = self._by_ids([iid])[0] if iid else None
        if inst is None:
            raise ApiError("MissingParameter", "The request must contain the parameter instanceId")
        values = {
            "disableApiTermination": "<disableApiTermination><value>false</value></disableApiTermination>",
            "disableApiStop": "<disableApiStop><value>false</value></disableApiStop>",
            "instanceType": f"<instanceType><value>{inst.type}</value></instanceType>",
            "instanceInitiatedShutdownBehavior":
                "<instanceInitiatedShutdownBehavior><value>stop</value></instanceInitiatedShutdownBehavior>",
            "ebsOptimized": "<ebsOptimized><value>true</value></ebsOptimized>",
            "sourceDestCheck": "<sourceDestCheck><value>true</value></sourceDestCheck>",
            "enaSupport": "<enaSupport><value>true</value></enaSupport>",
            "rootDeviceName": "<rootDeviceName><value>/dev/xvda</value></rootDeviceName>",
        }
        if attr not in values:
            raise ApiError("InvalidParameterValue", f"Value ({attr}) for parameter attribute is invalid.")
        return ec2_answer("DescribeInstanceAttribute", f"<instanceId>{inst.id}</instanceId>{values[attr]}")

    def describe_spot_price_history(self, p: dict[str, str]) -> Answer:
        """The latest price of every pool (what AWS answers for StartTime = now): one per pool."""
        fs = filters(p, "Filter", "Value")
        types = set(indexed(p, "InstanceType"))
        products = set(indexed(p, "ProductDescription"))
        azs = {p["AvailabilityZone"]} if "AvailabilityZone" in p else set()
        for name, vals in fs:
            if name == "availability-zone":
                azs = azs & set(vals) if azs else set(vals)
            elif name == "instance-type":
                types = types & set(vals) if types else set(vals)
            elif name == "product-description":
                products = products & set(vals) if products else set(vals)
            elif name not in ("spot-price", "timestamp"):
                raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
        size = int_param(p, "MaxResults", 1000, 1, 1000)

        def matching() -> list[tuple[str, str]]:
            if products and "Linux/UNIX" not in products:
                return []  # every price here is Linux/UNIX
            return [pl for pl in self.r.pools if (not types or pl[0] in types) and (not azs or pl[1] in azs)]

        def render(page: list[tuple[str, str]], nxt: str | None) -> Answer:
            tail = f"<nextToken>{nxt}</nextToken>" if nxt else ""
            body = "".join(render_spot_price(self.r, pl) for pl in page)
            return ec2_answer(
                "DescribeSpotPriceHistory", f"<spotPriceHistorySet>{body}</spotPriceHistorySet>{tail}"
            )

        key = query_key("DescribeSpotPriceHistory", fs, (sorted(types), sorted(products), sorted(azs)))
        return self.listing(key, matching, size, p.get("NextToken"), render)

    def describe_instance_types(self, p: dict[str, str]) -> Answer:
        names = indexed(p, "InstanceType")
        unknown = [n for n in names if n not in TYPE_BY_NAME]
        if unknown:
            raise ApiError(
                "InvalidInstanceType",
                f"The following supplied instance types do not exist: [{', '.join(unknown)}]",
            )
        fs = filters(p, "Filter", "Value")
        for name, _ in fs:
            if name not in ("instance-type", "processor-info.supported-architecture", "current-generation"):
                raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
        size = int_param(p, "MaxResults", 100, 5, 100)

        def matching() -> list[str]:
            out = []
            for t in TYPES:
                ok = not names or t.name in names
                for name, vals in fs:
                    if name == "instance-type":
                        ok &= any(re.fullmatch(v.replace(".", r"\.").replace("*", ".*"), t.name) for v in vals)
                    elif name == "processor-info.supported-architecture":
                        ok &= t.arch in vals
                    else:
                        ok &= "true" in vals
                if ok:
                    out.append(t.name)
            return out

        def render(page: list[str], nxt: str | None) -> Answer:
            tail = f"<nextToken>{nxt}</nextToken>" if nxt else ""
            return ec2_answer(
                "DescribeInstanceTypes",
                b"<instanceTypeSet>" + b"".join(self.r.type_xml[n] for n in page) + b"</instanceTypeSet>"
                + tail.encode(),
            )

        key = query_key("DescribeInstanceTypes", fs, sorted(names))
        return self.listing(key, matching, size, p.get("NextToken"), render)

    def describe_subnets(self, p: dict[str, str]) -> Answer:
        ids = set(indexed(p, "SubnetId"))
        subs = [dict(s, vpc=self.r.vpc) for s in self.r.subnets]
        missing = ids - {s["id"] for s in subs}
        if missing:
            raise ApiError("InvalidSubnetID.NotFound", f"The subnet ID '{sorted(missing)[0]}' does not exist")
        by = {"subnet-id": "id", "vpc-id": "vpc", "availability-zone": "az", "availability-zone-id": "az_id"}
        for name, vals in filters(p, "Filter", "Value"):
            if name not in by:
                raise ApiError("InvalidParameterValue", f"The filter '{name}' is invalid")
            subs = [s for s in subs if s[by[name]] in vals]
        body = "".join(render_subnet(s) for s in subs if not ids or s["id"] in ids)
        return ec2_answer("DescribeSubnets", f"<subnetSet>{body}</subnetSet>")

    def describe_availability_zones(self, p: dict[str, str]) -> Answer:
        names = set(indexed(p, "ZoneName"))
        body = "".join(render_az(az, az_id) for az, az_id in AZS if not names or az in names)
        return ec2_answer("DescribeAvailabilityZones", f"<availabilityZoneInfo>{body}</availabilityZoneInfo>")

    # ---- Auto Scaling

    def describe_auto_scaling_groups(self, p: dict[str, str]) -> Answer:
        names = indexed(p, "AutoScalingGroupNames.member")
        fs = filters(p, "Filters.member", "Values.member")
        raw = p.get("MaxRecords")
        if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= 100):
            raise ApiError(
                "ValidationError",
                f"1 validation error detected: Value '{raw}' at 'maxRecords' failed to satisfy constraint: "
                "Member must have value less than or equal to 100",
            )
        size = int(raw) if raw else 50

        def matching() -> list[Group]:
            out = []
            wanted = set(names)
            for g in self.r.groups:
                if wanted and g.name not in wanted:
                    continue
                ok = True
                for name, vals in fs:
                    if name == "tag-key":
                        ok &= any(k in vals for k, _, _ in g.tags)
                    elif name == "tag-value":
                        ok &= any(v in vals for _, v, _ in g.tags)
                    elif name.startswith("tag:"):
                        ok &= g.has_tag(name[4:], vals)
                    else:
                        raise ApiError("ValidationError", f"Filter name '{name}' is not valid")
                if ok:
                    out.append(g)
            return out

        def render(page: list[Group], nxt: str | None) -> Answer:
            tail = f"<NextToken>{nxt}</NextToken>" if nxt else ""
            groups = b"".join(g.xml for g in page)
            return asg_answer(
                "DescribeAutoScalingGroups", b"<AutoScalingGroups>" + groups + b"</AutoScalingGroups>" + tail.encode()
            )

        key = query_key("DescribeAutoScalingGroups", fs, sorted(names))
        return self.listing(key, matching, size, p.get("NextToken"), render)

    def describe_auto_scaling_instances(self, p: dict[str, str]) -> Answer:
        ids = indexed(p, "InstanceIds.member")
        size = int_param(p, "MaxRecords", 50, 1, 50)

        def render(page: list[Inst], nxt: str | None) -> Answer:
            tail = f"<NextToken>{nxt}</NextToken>" if nxt else ""
            body = "".join(render_asg_instance(i) for i in page)
            return asg_answer(
                "DescribeAutoScalingInstances", f"<AutoScalingInstances>{body}</AutoScalingInstances>{tail}"
            )

        if ids:
            # Unknown ids are left out, as Auto Scaling does.
            return render([self.r.by_id[i] for i in dict.fromkeys(ids) if i in self.r.by_id], None)
        key = query_key("DescribeAutoScalingInstances", [])
        return self.listing(key, lambda: list(self.r.instances), size, p.get("NextToken"), render)

    def describe_instance_refreshes(self, p: dict[str, str]) -> Answer:
        # No refresh has ever run in this region. (AWS answers an unknown group the same way.)
        return asg_answer("DescribeInstanceRefreshes", "<InstanceRefreshes/>")

    def describe_lifecycle_hooks(self, p: dict[str, str]) -> Answer:
        if p.get("AutoScalingGroupName") not in self.r.group_by_name:
            raise ApiError("ValidationError", f"Group {p.get('AutoScalingGroupName')} not found")
        return asg_answer("DescribeLifecycleHooks", "<LifecycleHooks/>")

    # ---- start-up

    def prewarm(self) -> list[tuple[str, int, float]]:
        """Render, once, every page of the listings `spotswap plan` reads, with the exact
        parameters it sends (crates/aws/src/snapshot.rs), by walking them as a client would.
        Returns (what, pages, seconds)."""
        live = {
            "Filter.1.Name": "instance-state-name",
            **{f"Filter.1.Value.{n}": v for n, v in enumerate(["pending", "running", "stopping", "stopped"], 1)},
        }
        opt_in = {"Filters.member.1.Name": "tag-key", "Filters.member.1.Values.member.1": "spotswap:enabled"}
        walks = [
            ("ec2 DescribeInstances, live, 1000/page", self.describe_instances, {**live, "MaxResults": "1000"}),
            ("autoscaling DescribeAutoScalingGroups, tag-key spotswap:enabled, 100/page",
             self.describe_auto_scaling_groups, {**opt_in, "MaxRecords": "100"}),
            ("autoscaling DescribeAutoScalingGroups, all (opt-out mode), 100/page",
             self.describe_auto_scaling_groups, {"MaxRecords": "100"}),
            ("ec2 DescribeInstanceTypes, 100/page", self.describe_instance_types, {"MaxResults": "100"}),
        ]
        token = re.compile(rb"<(?:nextToken|NextToken)>([^<]+)</")
        done = []
        for what, fn, params in walks:
            t0, pages = time.perf_counter(), 0
            while True:
                head, tail = fn(params)
                pages += 1
                # the token sits at the end of the result: EC2's before the request id
                # (end of tail), Auto Scaling's before ResponseMetadata (end of head)
                m = token.search(tail[-300:]) or token.search(head[-300:])
                if not m:
                    break
                params = {**params, "NextToken": m.group(1).decode()}
            done.append((what, pages, time.perf_counter() - t0))
        return done


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


class Counts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: Counter[str] = Counter()

    def add(self, key: str) -> None:
        with self._lock:
            self._c[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._c.items()))

    def reset(self) -> None:
        with self._lock:
            self._c.clear()


SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length
    disable_nagle_algorithm = True  # headers and body go out at once, no delayed-ACK stall
    server_version = "replay"
    sys_version = ""
    api: Api
    counts: Counts
    verbose = False

    _t0 = 0.0  # when the current request's headers were read
    _op = "-"  # service:Action of the current request, for --verbose

    def log_message(self, fmt: str, *args) -> None:
        pass  # the stock access log: replaced by the --verbose line in _send

    def parse_request(self) -> bool:
        self._t0, self._op = time.perf_counter(), "-"
        return super().parse_request()

    def _send(self, status: int, body: bytes, ctype: str, request_id: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if request_id:
            self.send_header("x-amzn-RequestId", request_id)
        self.end_headers()
        self.wfile.write(body)
        if self.verbose:
            # time from the request's headers to the last byte handed to the kernel
            ms = (time.perf_counter() - self._t0) * 1000
            # (the client port tells connections apart: keep-alive reuses them)
            sys.stderr.write(
                f"replay: {time.strftime('%H:%M:%S')} :{self.client_address[1]} {self._op} {status} "
                f"{len(body)} B {ms:.1f} ms\n"
            )

    def _send_answer(self, status: int, ans: Answer) -> None:
        rid = str(uuid.uuid4())
        self._send(status, b"".join((ans[0], rid.encode(), ans[1])), "text/xml;charset=UTF-8", rid)

    def _json(self, status: int, obj: object, ctype: str = "application/json") -> None:
        self._send(status, json.dumps(obj).encode(), ctype, str(uuid.uuid4()))

    # ---- control paths and the (rare) GET form of the query API

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_counts":
            self._json(200, self.counts.snapshot())
        elif url.query and "Action=" in url.query:
            self._query(dict(parse_qsl(url.query, keep_blank_values=True)))
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlsplit(self.path).path == "/_reset":
            self.counts.reset()
            self._json(200, {"reset": True})
            return
        target = self.headers.get("X-Amz-Target")
        if target:
            self._json_protocol(target)
            return
        self._query(dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))

    # ---- JSON protocol (Price List, EventBridge): never served

    def _json_protocol(self, target: str) -> None:
        prefix, _, op = target.partition(".")
        service = JSON_TARGETS.get(prefix, prefix.lower())
        self._op = f"{service}:{op}"
        self.counts.add(self._op)
        message = PRICING_MESSAGE if service == "pricing" else f"{self._op} is not served: {READ_ONLY}"
        self._json(400, {"__type": "AccessDeniedException", "message": message}, "application/x-amz-json-1.1")

    # ---- query protocol (EC2, Auto Scaling)

    def _service(self, params: dict[str, str]) -> str:
        version = params.get("Version")
        if version == EC2_VERSION:
            return "ec2"
        if version == ASG_VERSION:
            return "autoscaling"
        m = SCOPE.search(self.headers.get("Authorization", ""))
        return m.group(1) if m else "unknown"

    def _query(self, params: dict[str, str]) -> None:
        action = params.get("Action", "")
        service = self._service(params)
        self._op = f"{service}:{action or '(none)'}"
        self.counts.add(self._op)
        error_shape = asg_error if service == "autoscaling" else ec2_error
        try:
            handlers = self.api.ec2 if service == "ec2" else self.api.asg if service == "autoscaling" else {}
            handler = handlers.get(action)
            if handler is None:
                raise ApiError(
                    "InvalidAction", f"The action {action} is not served ({service}): {READ_ONLY}."
                )
            ans = handler(params)
        except ApiError as err:
            self._send_answer(err.status, error_shape(err))
            return
        except Exception as err:  # a bug here must show, as a 500 the SDK reports
            sys.stderr.write(f"replay: {service}:{action} failed: {err!r}\n")
            self._send_answer(500, error_shape(ApiError("InternalError", f"replay: {err!r}", 500)))
            return
        self._send_answer(200, ans)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the SDK may open many connections at once
    allow_reuse_address = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, help="0 picks a free port (required unless --dump-compatible)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--per-group", type=int, default=20)
    ap.add_argument("--scenario", choices=["steady", "busy"], default="steady")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="log every request on stderr, with its latency")
    ap.add_argument("--dump-compatible", action="store_true",
                    help="print TYPES and compatible() of every pair as JSON, and exit (for tests/bench_rules.rs)")
    a = ap.parse_args()
    if a.dump_compatible:
        print(json.dumps({
            "types": [{"name": t.name, "arch": t.arch, "vcpus": t.vcpus, "memory_mib": t.memory_mib,
                       "store_gb": t.store_gb, "burstable": t.burstable,
                       "boot_modes": boot_modes(t)} for t in TYPES],
            "compatible": [[o.name, c.name] for o in TYPES for c in TYPES if compatible(o, c)],
        }))
        return
    if a.port is None:
        ap.error("--port is required")
    if a.groups < 1 or a.per_group < 2:
        ap.error("--groups must be >= 1 and --per-group >= 2 (one on-demand floor and spot)")

    t0 = time.perf_counter()
    region = Region(a.groups, a.per_group, a.scenario, a.seed, now=int(time.time()))
    t1 = time.perf_counter()
    api = Api(region)
    warm = api.prewarm()
    t2 = time.perf_counter()
    pages, nbytes = api.cache.size()
    sys.stderr.write(
        f"replay: region generated and rendered in {t1 - t0:.2f} s; {pages} pages "
        f"({nbytes / 1e6:.1f} MB) pre-rendered in {t2 - t1:.2f} s\n"
    )
    for what, n, secs in warm:
        sys.stderr.write(f"replay:   {what}: {n} page(s), {secs * 1000:.0f} ms\n")

    Handler.api, Handler.counts, Handler.verbose = api, Counts(), a.verbose
    httpd = Server((a.host, a.port), Handler)
    port = httpd.server_address[1]
    print(
        f"replay: listening on http://{a.host}:{port} "
        f"({a.groups} groups, {len(region.instances)} instances, scenario {a.scenario})",
        flush=True,
    )
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
