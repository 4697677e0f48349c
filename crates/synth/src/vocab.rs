//! Vietnamese vocabulary of a cosmetics shop: categories, brands, product names and
//! descriptions, and review phrases (the spec's quality keywords among others).

use crate::rng::Rng;

/// Product categories with their variants.
pub(crate) const CATEGORIES: [(&str, &[&str]); 12] = [
    (
        "Sữa rửa mặt",
        &[
            "dịu nhẹ",
            "tạo bọt",
            "cho da dầu",
            "cho da nhạy cảm",
            "trà xanh",
        ],
    ),
    (
        "Kem chống nắng",
        &[
            "SPF50+ PA++++",
            "nâng tông",
            "kiềm dầu",
            "vật lý",
            "dạng sữa",
        ],
    ),
    (
        "Serum",
        &[
            "Vitamin C",
            "Niacinamide 10%",
            "Hyaluronic Acid",
            "Retinol 0.5%",
            "rau má",
        ],
    ),
    (
        "Nước hoa hồng",
        &["không cồn", "diếp cá", "BHA 2%", "cấp ẩm", "hoa cúc"],
    ),
    (
        "Kem dưỡng ẩm",
        &["cấp nước", "phục hồi", "ban đêm", "cho da khô", "dạng gel"],
    ),
    (
        "Mặt nạ",
        &[
            "đất sét",
            "giấy cấp ẩm",
            "ngủ",
            "trà xanh",
            "than hoạt tính",
        ],
    ),
    (
        "Nước tẩy trang",
        &["micellar", "cho da nhạy cảm", "dạng dầu", "làm sạch sâu"],
    ),
    (
        "Son môi",
        &["lì", "dưỡng môi", "tint bóng", "kem mịn", "đỏ gạch"],
    ),
    (
        "Dầu gội",
        &[
            "thảo dược",
            "giảm rụng tóc",
            "vỏ bưởi",
            "bồ kết",
            "phục hồi tóc",
        ],
    ),
    (
        "Sữa tắm",
        &["hương hoa", "dưỡng ẩm", "sáng da", "cà phê", "dịu nhẹ"],
    ),
    (
        "Kem mắt",
        &["giảm bọng mắt", "chống nhăn", "cấp ẩm", "peptide"],
    ),
    (
        "Tẩy tế bào chết",
        &["AHA", "hạt mịn", "cà phê", "cho môi", "BHA"],
    ),
];

/// Brands sold by the shop.
pub(crate) const BRANDS: [&str; 20] = [
    "La Roche-Posay",
    "Cetaphil",
    "Bioderma",
    "Innisfree",
    "The Ordinary",
    "Cocoon",
    "Some By Mi",
    "Klairs",
    "Senka",
    "Hada Labo",
    "Simple",
    "CeraVe",
    "Vichy",
    "Eucerin",
    "Laneige",
    "3CE",
    "Black Rouge",
    "Thorakao",
    "Sunplay",
    "Anessa",
];

const SIZES: [&str; 7] = ["15ml", "30ml", "50ml", "100ml", "150ml", "200ml", "400ml"];

const SKIN_TYPES: [&str; 6] = [
    "mọi loại da",
    "da dầu mụn",
    "da khô",
    "da nhạy cảm",
    "da hỗn hợp",
    "da thường",
];

const BENEFITS: [&str; 8] = [
    "giúp làm sạch nhẹ nhàng mà không gây khô căng",
    "cấp ẩm sâu và giữ ẩm suốt nhiều giờ",
    "hỗ trợ làm mờ thâm và đều màu da",
    "bảo vệ da trước tác hại của tia UV",
    "làm dịu da và giảm kích ứng",
    "kiểm soát dầu thừa, hạn chế mụn",
    "nuôi dưỡng da mềm mịn, căng bóng",
    "hương thơm dịu nhẹ, thư giãn",
];

/// Positive review phrases; several carry the spec's keywords (thấm nhanh, hiệu quả,
/// thơm, mịn, sáng da, dưỡng ẩm, tốt, đẹp).
pub(crate) const POSITIVE: [&str; 18] = [
    "thấm nhanh",
    "rất hiệu quả",
    "mùi thơm dễ chịu",
    "da mịn hơn hẳn",
    "dùng xong thấy sáng da",
    "dưỡng ẩm tốt",
    "sản phẩm tốt",
    "bao bì đẹp",
    "giao hàng nhanh",
    "đóng gói cẩn thận",
    "sẽ mua lại",
    "giá hợp lý",
    "hàng chính hãng",
    "không gây kích ứng",
    "kết cấu nhẹ, không bết",
    "dùng hợp da",
    "shop tư vấn nhiệt tình",
    "màu đẹp, lên chuẩn",
];

/// Negative phrases; several carry the spec's negative keywords (không thích, dở, tệ,
/// kém, giả).
pub(crate) const NEGATIVE: [&str; 12] = [
    "không thích mùi này",
    "dùng dở quá",
    "chất lượng tệ",
    "kém hiệu quả",
    "nghi hàng giả",
    "bị kích ứng",
    "hơi bết dính",
    "giao hàng chậm",
    "không như quảng cáo",
    "bị nổi mụn sau vài ngày",
    "vỏ hộp bị móp",
    "không đáng tiền",
];

const NEUTRAL: [&str; 8] = [
    "dùng tạm ổn",
    "chưa thấy khác biệt",
    "bình thường",
    "cần dùng thêm thời gian",
    "mới dùng vài ngày",
    "mùi hơi nồng",
    "giá hơi cao",
    "đóng gói bình thường",
];

/// A product name, e.g. `Serum The Ordinary Niacinamide 10% 30ml`.
pub(crate) fn product_name(category: usize, brand: &str, rng: &mut Rng) -> (String, String) {
    let (cat, variants) = CATEGORIES[category % CATEGORIES.len()];
    let variant = rng.pick(variants).copied().unwrap_or("");
    let size = rng.pick(&SIZES).copied().unwrap_or("50ml");
    (
        format!("{cat} {brand} {variant} {size}"),
        variant.to_owned(),
    )
}

/// A product description in Vietnamese.
pub(crate) fn description(category: usize, brand: &str, variant: &str, rng: &mut Rng) -> String {
    let (cat, _) = CATEGORIES[category % CATEGORIES.len()];
    let skin = rng.pick(&SKIN_TYPES).copied().unwrap_or("mọi loại da");
    let b1 = rng.pick(&BENEFITS).copied().unwrap_or("");
    let b2 = rng.pick(&BENEFITS).copied().unwrap_or("");
    format!("{cat} {variant} của {brand}, phù hợp với {skin}. Sản phẩm {b1}, đồng thời {b2}.")
}

/// A review comment whose tone follows `rating`.
pub(crate) fn comment(rating: u8, rng: &mut Rng) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(3);
    let (pos, neg, neu) = match rating {
        5 => (1 + rng.index(3), 0, 0),
        4 => (1 + rng.index(2), 0, rng.index(2)),
        3 => (rng.index(2), rng.index(2), 1),
        _ => (0, 1 + rng.index(2), rng.index(2)),
    };
    for _ in 0..pos {
        parts.extend(rng.pick(&POSITIVE));
    }
    for _ in 0..neu {
        parts.extend(rng.pick(&NEUTRAL));
    }
    for _ in 0..neg {
        parts.extend(rng.pick(&NEGATIVE));
    }
    parts.dedup();
    let mut text = parts.join(", ");
    if let Some(first) = text.chars().next() {
        let upper: String = first.to_uppercase().collect();
        text.replace_range(..first.len_utf8(), &upper);
    }
    text.push(if rating >= 4 && rng.chance(0.3) {
        '!'
    } else {
        '.'
    });
    text
}
