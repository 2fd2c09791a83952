import useFetched from '../hooks/useFetched.js';
import { coursePath, linkHandler } from '../router.js';
import PageHeading from './PageHeading.jsx';

const ROLE_LABELS = { teacher: 'You teach this course', admin: 'You administer this course', student: 'Student' };

export default function CourseList() {
  const { data, error: failure } = useFetched('/api/courses');
  const courses = data ? (Array.isArray(data) ? data : []) : null;
  const error = failure ? failure.detail ?? String(failure) : null;

  return (
    <section aria-labelledby="courses-title">
      <PageHeading id="courses-title" title="Your courses" />
      {error && <p className="error" role="alert">Could not load your courses: {error}</p>}
      {!courses && !error && <p role="status">Loading…</p>}
      {courses && courses.length === 0 && (
        <p className="empty">You are not in any course yet. Ask your teacher to approve your enrollment.</p>
      )}
      {courses && courses.length > 0 && (
        <ul className="course-list">
          {courses.map((course) => (
            <li key={course.id}>
              <a href={coursePath(course.id)} onClick={linkHandler(coursePath(course.id))}>
                <span className="course-code">{course.code}</span>
                <span className="course-title">{course.title}</span>
              </a>
              <span className="hint">
                {ROLE_LABELS[course.my_role] ?? course.my_role}
                {course.teacher_name && course.my_role === 'student' ? ` · taught by ${course.teacher_name}` : ''}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
