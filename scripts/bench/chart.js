// A plain SVG bar chart of jobs per second per scenario, coloured by group; no dependencies.
const COLOURS = { package: '#2f6fb0', bare: '#e0a030', 'hand-written': '#8a8a8a', bullmq: '#c0504d', 'server limit': '#5b9b4b' };

function renderChart(results) {
  const rows = Object.entries(results);
  const max = Math.max(...rows.map(([, r]) => r.jobsPerSecond));
  const barHeight = 22;
  const labelWidth = 300;
  const width = 820;
  const height = rows.length * (barHeight + 8) + 40;
  const scale = (width - labelWidth - 90) / max;
  const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = rows.map(([name, r], i) => {
    const y = 30 + i * (barHeight + 8);
    const w = Math.max(1, r.jobsPerSecond * scale);
    return [
      `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${escape(name)}</text>`,
      `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLOURS[r.group] ?? '#444'}"/>`,
      `<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 15}">${Math.round(r.jobsPerSecond).toLocaleString('en-US')}</text>`,
    ].join('');
  });
  const legend = Object.entries(COLOURS)
    .map(([group, colour], i) => `<rect x="${labelWidth + i * 100}" y="8" width="10" height="10" fill="${colour}"/><text x="${labelWidth + i * 100 + 14}" y="17">${group}</text>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${legend}
${bars.join('\n')}
</svg>
`;
}

module.exports = { renderChart };
