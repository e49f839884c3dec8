/**
 * nfnetlink and nf_tables constants from the kernel UAPI (`include/uapi/linux/netfilter/
 * nfnetlink.h`, `nf_tables.h`, `netfilter.h`), only those the element encoder uses.
 */

/** Netlink protocol of nfnetlink (`NETLINK_NETFILTER`). */
export const NETLINK_NETFILTER = 12;

/** Batch delimiters (`NFNL_MSG_BATCH_BEGIN` = `NLMSG_MIN_TYPE`). */
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
/** nfnetlink subsystem id of nf_tables: message type = subsys << 8 | command. */
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNETLINK_V0 = 0;

export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_DELSETELEM = 14;

/** `enum nft_set_elem_list_attributes`. */
export const NFTA_SET_ELEM_LIST_TABLE = 1;
export const NFTA_SET_ELEM_LIST_SET = 2;
export const NFTA_SET_ELEM_LIST_ELEMENTS = 3;

/** `enum nft_list_attributes`. */
export const NFTA_LIST_ELEM = 1;

/** `enum nft_set_elem_attributes`. */
export const NFTA_SET_ELEM_KEY = 1;
export const NFTA_SET_ELEM_DATA = 2;
export const NFTA_SET_ELEM_FLAGS = 3;
export const NFTA_SET_ELEM_USERDATA = 6;
export const NFTA_SET_ELEM_KEY_END = 10;

/** `enum nft_set_elem_flags`. */
export const NFT_SET_ELEM_INTERVAL_END = 0x1;

/** `enum nft_data_attributes`. */
export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;

/** `enum nft_verdict_attributes`. */
export const NFTA_VERDICT_CODE = 1;
export const NFTA_VERDICT_CHAIN = 2;

/** Verdict codes (`NF_DROP`, `NF_ACCEPT` from netfilter.h; `enum nft_verdicts`). */
export const VERDICT_CODES: Readonly<Record<string, number>> = {
  drop: 0,
  accept: 1,
  continue: -1,
  break: -2,
  jump: -3,
  goto: -4,
  return: -5,
};

/** nfgenmsg families (`NFPROTO_*`). */
export const NFPROTO: Readonly<Record<string, number>> = {
  inet: 1,
  ip: 2,
  arp: 3,
  netdev: 5,
  bridge: 7,
  ip6: 10,
};

/**
 * libnftnl's element user data: TLV type `NFTNL_UDATA_SET_ELEM_FLAGS` holding
 * `NFTNL_SET_ELEM_F_INTERVAL_OPEN`. nft attaches it to an interval that runs to the top of the
 * key space (no end element follows) so that `nft list` prints the range; the kernel only
 * stores it.
 */
export const UDATA_INTERVAL_OPEN = Uint8Array.of(1, 4, 1, 0, 0, 0);
