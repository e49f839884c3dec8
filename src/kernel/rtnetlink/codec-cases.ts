/**
 * Requests shared by the fixture capture (test/fixtures/rtnetlink/capture.ts, which sends them
 * to a real kernel in a throwaway netns and saves the bytes) and the codec tests, which encode
 * them again and compare with the saved, kernel-accepted bytes. Order matters: each request
 * builds on the state the previous ones made in a fresh namespace (lo = 1, then 2, 3, ...).
 */
import {
  AF_BRIDGE,
  IFF_UP,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NTF_SELF,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTM_SETLINK,
} from './constants.js';
import { encodeAddr } from './addr.js';
import { encodeLink } from './link.js';
import { encodeNeigh } from './neigh.js';
import { encodeRoute } from './route.js';

const NEW = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
const UP = { flags: IFF_UP, change: IFF_UP };

/** Named requests, encoded with seq 1. */
export const REQUEST_CASES: { name: string; encode: () => Uint8Array }[] = [
  {
    name: 'bridge-add',
    encode: () =>
      encodeLink(RTM_NEWLINK, NEW, UP, { name: 'br0', mtu: 1450, info: { kind: 'bridge' } }, 1),
  },
  {
    name: 'veth-add',
    encode: () =>
      encodeLink(
        RTM_NEWLINK,
        NEW,
        UP,
        {
          name: 'va',
          mtu: 1400,
          mac: '02:00:00:00:0a:01',
          master: 2,
          info: {
            kind: 'veth',
            peer: { attrs: { name: 'vb', mtu: 1400, mac: '02:00:00:00:0b:01' } },
          },
        },
        1,
      ),
  },
  {
    name: 'link-up',
    encode: () => encodeLink(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, UP, { name: 'vb' }, 1),
  },
  {
    name: 'alias-set',
    encode: () =>
      encodeLink(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, {}, { name: 'va', alias: 'cnm:ep' }, 1),
  },
  {
    // Same bytes as iproute2's `bridge link set dev va hairpin on` (strace -e write=3, seq 1):
    // RTM_SETLINK, AF_BRIDGE, ifi_index of va (4, a port of br0), IFLA_PROTINFO|NLA_F_NESTED
    // holding IFLA_BRPORT_MODE = 1.
    name: 'hairpin-set',
    encode: () =>
      encodeLink(
        RTM_SETLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        { family: AF_BRIDGE, index: 4 },
        { brport: { hairpin: true } },
        1,
      ),
  },
  {
    name: 'addr-add-v4',
    encode: () => encodeAddr(RTM_NEWADDR, NEW, { index: 4, cidr: '10.9.0.2/24' }, 1),
  },
  {
    name: 'addr-add-v6',
    encode: () => encodeAddr(RTM_NEWADDR, NEW, { index: 4, cidr: 'fd09::2/64', noDad: true }, 1),
  },
  {
    name: 'route-add-default',
    encode: () =>
      encodeRoute(RTM_NEWROUTE, NEW, { family: 4, dst: 'default', gateway: '10.9.0.1' }, 1),
  },
  {
    name: 'route-add-dev-mtu',
    encode: () =>
      encodeRoute(
        RTM_NEWROUTE,
        NEW,
        { family: 4, dst: '198.51.100.0/24', oif: 4, mtu: 1280, metric: 10 },
        1,
      ),
  },
  {
    name: 'vxlan-add',
    encode: () =>
      encodeLink(
        RTM_NEWLINK,
        NEW,
        {},
        {
          name: 'vx0',
          info: { kind: 'vxlan', vni: 4242, local: '10.9.0.2', link: 4, port: 4789, ttl: 16 },
        },
        1,
      ),
  },
  {
    name: 'neigh-add-v4',
    encode: () =>
      encodeNeigh(
        RTM_NEWNEIGH,
        NEW,
        { family: 4, index: 4, dst: '10.9.0.7', mac: '02:00:00:00:00:07' },
        1,
      ),
  },
  {
    name: 'fdb-add-vxlan',
    encode: () =>
      encodeNeigh(
        RTM_NEWNEIGH,
        NEW,
        { family: 'bridge', index: 5, mac: '02:00:00:00:00:aa', dst: '10.9.0.9', flags: NTF_SELF },
        1,
      ),
  },
];
