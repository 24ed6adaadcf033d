//! Redis 7.0's geohash.c and geohash_helper.c, ported operation for
//! operation: the same double arithmetic in the same order (so scores,
//! search boxes and distances are bit-identical to redis-server's), the same
//! integer wrap-arounds, the same 9-box search area selection.
//!
//! Pure code: no keyspace, no replies.
//!
//! Comparisons and clamps are written as the C code writes them (not with
//! `contains` or `clamp`) because they must treat NaN as C does.
#![allow(clippy::manual_range_contains, clippy::manual_clamp)]

use std::f64::consts::PI;

/// 26 * 2 = 52 bits: every score fits a double exactly.
pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;

/// Earth's quadratic mean radius for WGS-84, as Redis.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
/// `M_PI / 180.0`.
const D_R: f64 = PI / 180.0;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// `GeoHashBits`: `step` bits of longitude and of latitude, interleaved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bits {
    pub bits: u64,
    pub step: u8,
}

impl Bits {
    /// `HASHISZERO`: the marker of an excluded neighbour box.
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    fn is_zero(&self) -> bool {
        self.max == 0.0 && self.min == 0.0
    }
}

/// `GeoHashArea`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

/// Redis's WGS84 ranges (EPSG:900913 latitude limits).
pub const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
pub const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = u64::from(xlo);
    let mut y = u64::from(ylo);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// C's `(uint32_t)` of a non-negative double below 2^33 (x86-64 converts
/// through a 64-bit integer and keeps the low half).
fn to_u32(d: f64) -> u32 {
    (d as u64) as u32
}

/// `geohashEncode`: None where Redis returns 0.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<Bits> {
    if step > 32 || step == 0 || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    if longitude > LONG_MAX || longitude < LONG_MIN || latitude > LAT_MAX || latitude < LAT_MIN {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(Bits {
        bits: interleave64(to_u32(lat_offset), to_u32(long_offset)),
        step,
    })
}

/// `geohashEncodeWGS84`.
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<Bits> {
    encode(LONG_RANGE, LAT_RANGE, longitude, latitude, step)
}

/// `geohashDecode`.
pub fn decode(long_range: Range, lat_range: Range, hash: Bits) -> Option<Area> {
    if hash.is_zero() || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    let step = hash.step;
    let hash_sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = hash_sep as u32;
    let ilono = (hash_sep >> 32) as u32;
    let div = (1u64 << step) as f64;
    Some(Area {
        latitude: Range {
            min: lat_range.min + (f64::from(ilato) * 1.0 / div) * lat_scale,
            max: lat_range.min + (f64::from(ilato.wrapping_add(1)) * 1.0 / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (f64::from(ilono) * 1.0 / div) * long_scale,
            max: long_range.min + (f64::from(ilono.wrapping_add(1)) * 1.0 / div) * long_scale,
        },
    })
}

/// `geohashDecodeAreaToLongLat`: the centre, clamped to the limits.
fn area_center(area: &Area) -> [f64; 2] {
    let mut x = (area.longitude.min + area.longitude.max) / 2.0;
    if x > LONG_MAX {
        x = LONG_MAX;
    }
    if x < LONG_MIN {
        x = LONG_MIN;
    }
    let mut y = (area.latitude.min + area.latitude.max) / 2.0;
    if y > LAT_MAX {
        y = LAT_MAX;
    }
    if y < LAT_MIN {
        y = LAT_MIN;
    }
    [x, y]
}

/// C's `(uint64_t)` of a double as x86-64 code computes it (values past
/// the range, NaN and negative ones included: Redis's `decodeGeohash`
/// casts any zset score).
pub fn double_to_u64(d: f64) -> u64 {
    const TWO63: f64 = 9223372036854775808.0;
    // cvttsd2si: truncation, 0x8000000000000000 when out of range or NaN.
    let cvt = |v: f64| -> u64 {
        if v.is_nan() || !(-TWO63..TWO63).contains(&v) {
            1 << 63
        } else {
            (v as i64) as u64
        }
    };
    if d >= TWO63 {
        cvt(d - TWO63) ^ (1 << 63)
    } else {
        cvt(d)
    }
}

/// C's `(long long)` of a double on x86-64 (cvttsd2si).
pub fn double_to_i64(d: f64) -> i64 {
    const TWO63: f64 = 9223372036854775808.0;
    if d.is_nan() || !(-TWO63..TWO63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// Redis's `decodeGeohash`: a zset score to `[longitude, latitude]`.
pub fn decode_score(score: f64) -> Option<[f64; 2]> {
    let hash = Bits {
        bits: double_to_u64(score),
        step: STEP_MAX,
    };
    decode(LONG_RANGE, LAT_RANGE, hash).map(|a| area_center(&a))
}

/// `geohashAlign52Bits`.
pub fn align52(hash: Bits) -> u64 {
    hash.bits << (52 - u32::from(hash.step) * 2)
}

/// The score GEOADD gives a valid position.
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(align52)
}

fn move_x(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> (64 - u32::from(hash.step) * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaa >> (64 - u32::from(hash.step) * 2);
    hash.bits = x | y;
}

fn move_y(hash: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> (64 - u32::from(hash.step) * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555 >> (64 - u32::from(hash.step) * 2);
    hash.bits = x | y;
}

fn moved(hash: Bits, dx: i8, dy: i8) -> Bits {
    let mut h = hash;
    move_x(&mut h, dx);
    move_y(&mut h, dy);
    h
}

/// `geohashEstimateStepsByRadius`.
pub fn estimate_steps_by_radius(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if lat > 66.0 || lat < -66.0 {
        step -= 1;
        if lat > 80.0 || lat < -80.0 {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// The search shape (`GeoShape`): a centre, a radius or a box, and the
/// unit's factor to meters.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub xy: [f64; 2],
    pub conversion: f64,
    pub kind: ShapeKind,
}

#[derive(Clone, Copy, Debug)]
pub enum ShapeKind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// `geohashBoundingBox`: `[min lon, min lat, max lon, max lat]`.
fn bounding_box(shape: &Shape) -> [f64; 4] {
    let [longitude, latitude] = shape.xy;
    let (height, width) = match shape.kind {
        ShapeKind::Radius(r) => (shape.conversion * r, shape.conversion * r),
        ShapeKind::Box { width, height } => (
            shape.conversion * (height / 2.0),
            shape.conversion * (width / 2.0),
        ),
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
    let southern = latitude < 0.0;
    [
        if southern {
            longitude - long_delta_bottom
        } else {
            longitude - long_delta_top
        },
        latitude - lat_delta,
        if southern {
            longitude + long_delta_bottom
        } else {
            longitude + long_delta_top
        },
        latitude + lat_delta,
    ]
}

/// The boxes to scan, in Redis's order: the centre, then north, south,
/// east, west, north-east, north-west, south-east, south-west (excluded
/// ones are zero).
pub fn areas_by_shape(shape: &Shape) -> [Bits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(shape);
    let [longitude, latitude] = shape.xy;
    let radius_meters = match shape.kind {
        ShapeKind::Radius(r) => r,
        ShapeKind::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_meters, latitude);
    let dec = |b: Bits| decode(LONG_RANGE, LAT_RANGE, b).unwrap_or_default();
    let enc = |steps: u8| encode_wgs84(longitude, latitude, steps).unwrap_or_default();
    let mut hash = enc(steps);
    let mut area = dec(hash);
    let decrease_step = dec(moved(hash, 0, 1)).latitude.max < max_lat
        || dec(moved(hash, 0, -1)).latitude.min > min_lat
        || dec(moved(hash, 1, 0)).longitude.max < max_lon
        || dec(moved(hash, -1, 0)).longitude.min > min_lon;
    if steps > 1 && decrease_step {
        steps -= 1;
        hash = enc(steps);
        area = dec(hash);
    }
    // centre, N, S, E, W, NE, NW, SE, SW
    let mut n = [
        hash,
        moved(hash, 0, 1),
        moved(hash, 0, -1),
        moved(hash, 1, 0),
        moved(hash, -1, 0),
        moved(hash, 1, 1),
        moved(hash, -1, 1),
        moved(hash, 1, -1),
        moved(hash, -1, -1),
    ];
    if steps >= 2 {
        let zero = Bits::default();
        if area.latitude.min < min_lat {
            for i in [2, 8, 7] {
                n[i] = zero;
            }
        }
        if area.latitude.max > max_lat {
            for i in [1, 5, 6] {
                n[i] = zero;
            }
        }
        if area.longitude.min < min_lon {
            for i in [4, 8, 6] {
                n[i] = zero;
            }
        }
        if area.longitude.max > max_lon {
            for i in [3, 7, 5] {
                n[i] = zero;
            }
        }
    }
    n
}

/// `scoresOfGeoHashBox`: the score interval `[min, max)` of a box.
pub fn box_scores(hash: Bits) -> (f64, f64) {
    let min = align52(hash);
    let max = align52(Bits {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    });
    (min as f64, max as f64)
}

/// `geohashGetLatDistance`.
fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// `geohashGetDistance`: haversine on Redis's sphere.
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// `geoWithinShape`: the point's position and its distance from the
/// centre when the score lies inside the shape.
pub fn within(shape: &Shape, score: f64) -> Option<([f64; 2], f64)> {
    let xy = decode_score(score)?;
    let [x1, y1] = shape.xy;
    match shape.kind {
        ShapeKind::Radius(r) => {
            let d = distance(x1, y1, xy[0], xy[1]);
            if d > r * shape.conversion {
                return None;
            }
            Some((xy, d))
        }
        ShapeKind::Box { width, height } => {
            let (width_m, height_m) = (width * shape.conversion, height * shape.conversion);
            if lat_distance(xy[1], y1) > height_m / 2.0 {
                return None;
            }
            if distance(xy[0], xy[1], x1, xy[1]) > width_m / 2.0 {
                return None;
            }
            Some((xy, distance(x1, y1, xy[0], xy[1])))
        }
    }
}

/// GEOHASH's 11 characters: the position re-encoded over the standard
/// ranges (latitude -90..90), the eleventh character always '0'.
pub fn standard_geohash(xy: [f64; 2]) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let bits = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        xy[0],
        xy[1],
        26,
    )
    .map_or(0, |h| h.bits);
    let mut buf = [b'0'; 11];
    for (i, c) in buf.iter_mut().enumerate().take(10) {
        let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palermo_score_and_hash() {
        // Values from redis-server 7.0: GEOADD Sicily 13.361389 38.115556
        // "Palermo", ZSCORE, GEOHASH.
        let s = score_of(13.361389, 38.115556).unwrap();
        assert_eq!(s, 3479099956230698);
        let xy = decode_score(s as f64).unwrap();
        assert_eq!(&standard_geohash(xy), b"sqc8b49rny0");
    }

    #[test]
    fn cast_like_x86() {
        assert_eq!(double_to_u64(-1.0), u64::MAX);
        assert_eq!(double_to_u64(f64::NAN), 1 << 63);
        assert_eq!(double_to_u64(f64::INFINITY), 0);
        assert_eq!(double_to_u64(1e19), 10000000000000000000);
        assert_eq!(double_to_i64(1e30), i64::MIN);
    }

    #[test]
    fn step_estimate() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(200_000.0, 10.0), 6);
        assert_eq!(estimate_steps_by_radius(200_000.0, 70.0), 5);
        assert_eq!(estimate_steps_by_radius(200_000.0, -85.0), 4);
        assert_eq!(estimate_steps_by_radius(1e9, 0.0), 1);
    }
}
