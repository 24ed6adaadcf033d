//! The two sorts GEOSEARCH uses, as redis-server runs them, so points at
//! equal distances come out in Redis's order: glibc's `qsort` (a stable
//! top-down merge sort, `msort.c`) when every result is returned, and
//! Redis's `pqsort` (Bentley & McIlroy quicksort restricted to a range of
//! ranks) when COUNT keeps fewer. Both take C-style three-way comparators
//! and stay safe whatever the comparator answers.

use std::cmp::Ordering;

/// glibc 2.x `qsort` for small arrays: `msort_with_tmp`.
pub fn msort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    {
        let (a, b) = v.split_at_mut(n1);
        msort(a, cmp);
        msort(b, cmp);
    }
    let mut tmp = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) != Ordering::Greater {
            tmp.push(v[i].clone());
            i += 1;
        } else {
            tmp.push(v[j].clone());
            j += 1;
        }
    }
    tmp.extend_from_slice(&v[i..n1]);
    // The rest of the second half is already in place.
    let done = tmp.len();
    v[..done].clone_from_slice(&tmp);
}

fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    let lt = |x: usize, y: usize| cmp(&v[x], &v[y]) == Ordering::Less;
    let gt = |x: usize, y: usize| cmp(&v[x], &v[y]) == Ordering::Greater;
    if lt(a, b) {
        if lt(b, c) {
            b
        } else if lt(a, c) {
            c
        } else {
            a
        }
    } else if gt(b, c) {
        b
    } else if lt(a, c) {
        a
    } else {
        c
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}

/// Redis's `pqsort(a, n, es, cmp, lrange, rrange)`: sorts enough of `v`
/// that ranks `lrange..=rrange` hold what a full sort would put there.
pub fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lrange: usize, rrange: usize) {
    pq(v, 0, v.len(), cmp, lrange, rrange);
}

/// `_pqsort` on `v[base..base + n]`; `lr..=rr` are absolute indexes.
fn pq<T>(
    v: &mut [T],
    mut base: usize,
    mut n: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
    lr: usize,
    rr: usize,
) {
    loop {
        if n < 7 {
            for pm in base + 1..base + n {
                let mut pl = pm;
                while pl > base && cmp(&v[pl - 1], &v[pl]) == Ordering::Greater {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = base + n / 2;
        if n > 7 {
            let mut pl = base;
            let mut pn = base + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(base, pm);
        let (mut pa, mut pb) = (base + 1, base + 1);
        // pc and pd may step below base + 1 (to base); kept as isize.
        let mut pc = (base + n - 1) as isize;
        let mut pd = pc;
        loop {
            while pb as isize <= pc {
                let r = cmp(&v[pb], &v[base]);
                if r == Ordering::Greater {
                    break;
                }
                if r == Ordering::Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb as isize <= pc {
                let r = cmp(&v[pc as usize], &v[base]);
                if r == Ordering::Less {
                    break;
                }
                if r == Ordering::Equal {
                    v.swap(pc as usize, pd as usize);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb as isize > pc {
                break;
            }
            v.swap(pb, pc as usize);
            pb += 1;
            pc -= 1;
        }
        let pn = base + n;
        let r = (pa - base).min(pb - pa);
        vecswap(v, base, pb - r, r);
        let r = ((pd - pc) as usize).min(pn - pd as usize - 1);
        vecswap(v, pb, pn - r, r);
        // Left part: elements smaller than the pivot.
        let r = pb - pa;
        if r > 1 {
            let (l, rt) = (base, base + r - 1);
            if !((lr < l && rr < l) || (lr > rt && rr > rt)) {
                pq(v, base, r, cmp, lr, rr);
            }
        }
        // Right part: elements greater than the pivot, iterated.
        let r = (pd - pc) as usize;
        if r > 1 {
            base = pn - r;
            n = r;
            let (l, rt) = (base, base + r - 1);
            if !((lr < l && rr < l) || (lr > rt && rr > rt)) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_key(a: &(u32, u32), b: &(u32, u32)) -> Ordering {
        a.0.cmp(&b.0)
    }

    #[test]
    fn msort_is_stable() {
        let mut v: Vec<(u32, u32)> = (0..100).map(|i| ((i * 7919) % 13, i)).collect();
        let mut w = v.clone();
        msort(&mut v, &by_key);
        w.sort_by(by_key);
        assert_eq!(v, w);
    }

    #[test]
    fn pqsort_orders_the_requested_ranks() {
        for n in [1usize, 5, 7, 8, 30, 41, 200] {
            for k in [1usize, 3, 10, 100] {
                let k = k.min(n);
                let mut v: Vec<(u32, u32)> = (0..n as u32)
                    .map(|i| (i.wrapping_mul(2654435761) % 97, i))
                    .collect();
                let mut sorted: Vec<u32> = v.iter().map(|p| p.0).collect();
                sorted.sort();
                pqsort(&mut v, &by_key, 0, k - 1);
                let got: Vec<u32> = v[..k].iter().map(|p| p.0).collect();
                assert_eq!(got, sorted[..k], "n={n} k={k}");
            }
        }
    }
}
