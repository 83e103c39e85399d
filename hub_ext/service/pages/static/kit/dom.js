/** A tiny element builder shared by the lab panel and the admin page: plain DOM, re-rendered from data. */
export function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false) {
            continue;
        }
        if (key.startsWith('on') && typeof value === 'function') {
            el.addEventListener(key.slice(2).toLowerCase(), value);
        }
        else if (key === 'className') {
            el.className = String(value);
        }
        else if (value === true) {
            el.setAttribute(key, '');
        }
        else {
            el.setAttribute(key, String(value));
        }
    }
    for (const child of children.flat()) {
        if (child === null || child === undefined || child === false) {
            continue;
        }
        el.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
    }
    return el;
}
/**
 * A table body from rows, with one line of text when there are none: the grid both UIs list
 * workloads, queues and events in.
 */
export function fillTable(tbody, columns, rows, empty) {
    tbody.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: columns, className: 'gp-Muted' }, empty))]));
}
