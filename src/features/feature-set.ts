/**
 * The baseline feature set (DESIGN §4), version 1. Each feature is computed at a bar
 * close from the bar's 1-minute sub-bars; its formula is written next to its index. A
 * feature the feed cannot supply is masked (mask 0), never invented. Models record
 * FEATURE_SET_ID and the ordered names and refuse to load against another set.
 */
export const FEATURE_NAMES = [
  /** log(close / previous bar's close); masked when there is no previous close. */
  'ret',
  /** log(high / low). */
  'range',
  /** (close - low) / (high - low); 0.5 when high == low. */
  'closeLocation',
  /** log(close / bar VWAP), VWAP = amount / volume. */
  'closeVsVwap',
  /** log((volume + 1) / (mean volume of the same bar slot over the last K days + 1)); masked without history. */
  'relVolume',
  /** sqrt(sum r_i^2) over the bar's 1-minute log returns r_i. */
  'realizedVol',
  /** sample skewness of the 1-minute returns; masked below 3 returns or with zero variance. */
  'realizedSkew',
  /** volume of 1-minute bars with r_i > 0 divided by the bar's volume. */
  'upVolumeShare',
  /** Pearson correlation of 1-minute close and volume; masked below 3 minutes or with zero variance. */
  'priceVolumeCorr',
  /** buyer-initiated / (buyer + seller-initiated) volume; masked when the feed has no sides. */
  'buyVolumeShare',
  /** (large buy amount - large sell amount) / amount, large = a trade of at least `largeTradeAmount` CNY; trade ticks only. */
  'largeNetBuyShare',
  /** log(amount / trades), CNY per trade; masked when trade counts are unknown (snapshots). */
  'avgTradeSize',
  /** mean Level-1 imbalance (bidVol1 - askVol1) / (bidVol1 + askVol1); masked without quotes. */
  'orderImbalance',
  /** mean (ask1 - bid1) / mid over quotes with ask1 > bid1 > 0; masked without such quotes. */
  'relSpread',
] as const;

export type FeatureName = (typeof FEATURE_NAMES)[number];
export const FEATURE_COUNT = FEATURE_NAMES.length;
export const FEATURE_SET_ID = 'baseline-v1';

export const F_RET = 0;
export const F_RANGE = 1;
export const F_CLOSE_LOCATION = 2;
export const F_CLOSE_VS_VWAP = 3;
export const F_REL_VOLUME = 4;
export const F_REALIZED_VOL = 5;
export const F_REALIZED_SKEW = 6;
export const F_UP_VOLUME_SHARE = 7;
export const F_PRICE_VOLUME_CORR = 8;
export const F_BUY_VOLUME_SHARE = 9;
export const F_LARGE_NET_BUY = 10;
export const F_AVG_TRADE_SIZE = 11;
export const F_ORDER_IMBALANCE = 12;
export const F_REL_SPREAD = 13;

export interface FeatureParams {
  /** A trade of at least this many CNY is a large order. */
  largeTradeAmount: number;
  /** Days of same-slot volume history for relVolume. */
  volumeLookbackDays: number;
}

export const DEFAULT_FEATURE_PARAMS: FeatureParams = { largeTradeAmount: 200_000, volumeLookbackDays: 5 };
