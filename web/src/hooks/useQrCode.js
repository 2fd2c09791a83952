import { useEffect, useState } from 'react';
import QRCode from 'qrcode';

/**
 * The QR code of `url` as an SVG data URL (no canvas, no inline markup), for the projector's
 * check-in link and the roster's join link; null while it is drawn, on failure, or without `url`.
 */
export default function useQrCode(url) {
  const [src, setSrc] = useState(null);
  useEffect(() => {
    if (!url) return undefined;
    let cancelled = false;
    QRCode.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
      .then((svg) => {
        if (!cancelled) setSrc(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`);
      })
      .catch(() => {
        if (!cancelled) setSrc(null);
      });
    return () => {
      cancelled = true;
    };
  }, [url]);
  return url ? src : null;
}
